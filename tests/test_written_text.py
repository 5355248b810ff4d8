"""Segments, words and subtitles show the text as written ("$4.20"), timed by the spoken words that say it ("four
dollars and twenty cents"): `voicegen.text.written` and the frontend's `Chunk.written_words`."""

from __future__ import annotations

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from voicegen.subtitles import to_srt, to_vtt
from voicegen.text import Frontend
from voicegen.text.written import WINDOW, WrittenText, _Keys, _opcodes
from voicegen.timing import chunk_segment

FE = Frontend()


def written_words(text: str) -> list[str]:
    return [w.text for chunk in FE(text) for w in chunk.written_words]


def test_rewritten_tokens_are_shown_as_written_and_timed_by_their_spoken_words():
    text = "Dr. Smith paid $4.20 for the JSON file on 2025-03-03."
    (chunk,) = FE(text)
    assert "four dollars and twenty cents" in chunk.text and "Jason" in chunk.text  # what is said
    assert chunk.written == text
    assert [w.text for w in chunk.written_words] == text.split()
    spoken = {w.text: w for w in chunk.words}
    money = chunk.written_words[3]  # "$4.20": from "four" to "cents"
    assert (money.start, money.end) == (spoken["four"].start, spoken["cents"].end)
    assert chunk.phonemes[money.start:money.end].count(" ") == 4  # five spoken words


def test_words_espeak_runs_together_keep_their_space_in_the_text():
    for text in ("There are three cats.", "I am happy.", "Hello, I am Bob."):
        (chunk,) = FE(text)
        assert chunk.text == text and chunk.written == text
        assert [w.text for w in chunk.words] == text.split()


def test_dropped_symbols_and_inline_overrides_are_shown_where_they_were_written():
    assert written_words("x — y and 👋 ok.") == ["x —", "y", "and 👋", "ok."]
    assert written_words("Meet [Kokoro](/kˈOkəɹO/) and A/B.") == ["Meet", "Kokoro", "and", "A/B."]


def test_a_segment_and_its_subtitles_show_the_written_text():
    (chunk,) = FE("It costs $4.20, Dr. Smith.")
    durations = torch.full((len(chunk.phonemes) + 2,), 3)
    segment = chunk_segment(chunk, durations, 1.0, 24000)
    assert segment.text == "It costs $4.20, Dr. Smith."
    assert [w.text for w in segment.words] == ["It", "costs", "$4.20,", "Dr.", "Smith."]
    assert all(a.end <= b.start + 1e-9 and a.start < a.end for a, b in zip(segment.words, segment.words[1:]))
    for subtitles in (to_srt([segment]), to_vtt([segment])):
        assert "$4.20, Dr. Smith." in subtitles and "dollars" not in subtitles and "Doctor" not in subtitles


WORDS = ["the", "cat", "Hello,", "world!", "I", "am", "There", "are", "$4.20", "3,497", "Dr.", "2025-03-03",
         "10:30", "5%", "A/B", "JSON", "—", "(yes)", "3rd", "e.g.", "1.5", "NASA", "x", '"quoted"', "don't", "Mr."]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), min_size=1, max_size=4))
# a sentence said twice, "Mr." read "Mister" the first time and not the second: lined up token by token, the first
# sentence's words matched the second's and "$4.20" took "the world!" with it
@example([["$4.20", "the", "world!", "(yes)", "Mr.", "the"], ["$4.20", "the", "world!", "(yes)", "Mr."]])
# "Mr. A/B Mr." said twice, the last "Mr." not read "Mister": difflib's longest matching block paired the first
# sentence's "A slash B Mr" with the second's, and the words between came out of order
@example([["Mr.", "A/B", "Mr.", "the"], ["the"], ["Mr.", "A/B", "Mr."]])
def test_the_written_words_of_a_text_are_its_tokens_once_each_in_order(sentences):
    text = " ".join(" ".join(["So", *words]) + "." for words in sentences)  # each sentence says something
    assert " ".join(written_words(text)) == " ".join(text.split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcdefg"), max_size=5 * WINDOW), st.lists(st.sampled_from("abcdefxyz"), max_size=5 * WINDOW))
def test_windowed_alignment_tiles_both_sequences_and_matches_only_equal_keys(a, b):
    ops = list(_opcodes(_Keys(a), _Keys(b)))
    i = j = 0
    for tag, i1, i2, j1, j2 in ops:
        assert (i1, j1) == (i, j) and (i2 > i1 or j2 > j1)
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
        i, j = i2, j2
    assert (i, j) == (len(a), len(b))
    same = list(_opcodes(_Keys(a), _Keys(a)))  # a text the normalizer left alone
    assert same == ([("equal", 0, len(a), 0, len(a))] if a else [])


def test_a_long_repetitive_text_aligns_every_word():
    words = ["la"] * 3000 + ["five", "dollars"] + ["la"] * 10
    written = WrittenText("la " * 3000 + "$5 " + "la " * 10, words)
    runs = [written.run_of(i) for i in range(len(words))]
    assert runs[:3000] == list(range(3000)) and runs[3000] == runs[3001] == 3000 and runs[-1] == 3010
    assert written.written(3000) == "$5" and written.written(3010) == "la"
