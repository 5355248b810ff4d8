"""Noun/verb homographs: the reading follows the words around them (voicegen.text.homographs)."""

import pytest

from voicegen.text import Frontend
from voicegen.text.homographs import HOMOGRAPHS, NOUN, VERB, part_of_speech
from voicegen.text.phonemize import ipa_to_vocab


@pytest.fixture(scope="module")
def fe():
    return Frontend(alphabet="espeak")


def reading(word, pos):
    return ipa_to_vocab(HOMOGRAPHS[word][pos], "en-us", "espeak")


@pytest.mark.parametrize(
    "sentence, word, pos",
    [
        ("I will record a new record.", "record", [VERB, NOUN]),
        ("Present the present to the class.", "present", [VERB, NOUN]),
        ("They object to the object.", "object", [VERB, NOUN]),
        ("He wound the bandage around the wound.", "wound", [VERB, NOUN]),
        ("The wind blows; wind the clock.", "wind", [NOUN, VERB]),
        ("Close the door.", "close", [VERB]),
        ("Use it; what is the use?", "use", [VERB, NOUN]),
        ("Do not tear a tear.", "tear", [VERB, NOUN]),
        ("It is not subject to change; subject it to a test.", "subject", [NOUN, VERB]),
        ("We are close; close the gap.", "close", [NOUN, VERB]),
        ("Be present; they present it.", "present", [NOUN, VERB]),
    ],
)
def test_context_picks_the_reading(fe, sentence, word, pos):
    phonemes = fe.phonemize(sentence)
    expected = [reading(word, p) for p in pos]
    found, start = [], 0
    for e in expected:  # each expected reading, in order
        i = phonemes.find(e, start)
        assert i >= 0, (sentence, phonemes, e)
        found.append(i)
        start = i + len(e)
    other = [reading(word, 1 - p) for p in pos]
    for o in set(other) - set(expected):
        assert o not in phonemes, (sentence, phonemes, o)


def test_no_rule_leaves_espeak_alone():
    assert part_of_speech(["very", "close"], 1) is None
    assert part_of_speech(["the", "clock", "was", "wound"], 3) is None  # a past participle: espeak's choice
    assert part_of_speech(["Close", "to", "home"], 0) is None  # "to" after it: not an imperative cue
    assert part_of_speech(["the", "record"], 1) == NOUN and part_of_speech(["to", "record"], 1) == VERB


def test_table_is_in_the_model_alphabet_after_mapping():
    for word, (noun, verb) in HOMOGRAPHS.items():
        for alphabet in ("espeak", "misaki"):
            for ipa in (noun, verb):
                mapped = ipa_to_vocab(ipa, "en-us", alphabet)
                assert mapped and "ˈ" in mapped, (word, ipa, alphabet)
        assert noun != verb, word
