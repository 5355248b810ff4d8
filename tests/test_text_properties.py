"""Property tests: the frontend never fails except with ValueError, and never emits junk."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicegen.constants import MAX_PHONEMES
from voicegen.text import VOCAB, Frontend, normalize

FE = Frontend()
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like real input: words, numbers, symbols, abbreviations, plus arbitrary Unicode.
PIECES = st.sampled_from([
    "Dr.", "St.", "e.g.", "U.S.", "Henry VIII", "GPU", "NASA", "$3.50", "€5", "1,234", "3.14", "-7", "1/2",
    "22nd", "1990s", "'90s", "5:30 p.m.", "17:45", "2025-03-03", "v2.0.1", "5 km", "20°C", "50%",
    "https://x.org/a?b=c", "me@x.com", "#tag", "@who", "&", "+", "=", "/", "...", "—", "-", "(", ")", '"',
    "“", "”", "!", "?", ",", ";", ":", "\n", "\n\n", "[Kokoro](/kˈOkəɹO/)", "[x](//)", "😀", "שלום",
    "\u200f", "\x00", "A", "I", "hello", "world", "1" * 60, "x" * 300, "'", "’", "*",
])
# Grapheme clusters and scripts that the pieces above miss (issue 15, class 2: a keycap or a stray combining mark
# crashed the normalizer and these strategies never generated one).
COMBINING = st.characters(categories=("Mn", "Mc", "Me"))
BASES = st.one_of(st.sampled_from("aeoxAZ5#* "), st.characters(categories=("L", "N", "P", "S")))
CLUSTERS = st.one_of(
    st.tuples(BASES, st.lists(COMBINING, min_size=1, max_size=4).map("".join)).map("".join),  # base + marks
    st.lists(COMBINING, min_size=1, max_size=4).map("".join),  # marks with no base
    st.sampled_from("0123456789#*").map(lambda c: c + "\ufe0f\u20e3"),  # keycaps
    st.sampled_from("0123456789#*").map(lambda c: c + "\u20e3"),  # keycaps without the selector
    st.lists(st.sampled_from(["👨", "👩", "👧", "👦", "❤\ufe0f", "🏳\ufe0f", "🌈", "💋"]), min_size=2, max_size=4)
    .map("\u200d".join),  # emoji ZWJ sequences
    st.tuples(st.characters(min_codepoint=0x2600, max_codepoint=0x27BF), st.sampled_from(["\ufe0e", "\ufe0f"]))
    .map("".join),  # variation selectors
    st.tuples(st.sampled_from(["👍", "👋", "🧑"]), st.characters(min_codepoint=0x1F3FB, max_codepoint=0x1F3FF))
    .map("".join),  # skin tones
    st.lists(st.characters(min_codepoint=0x1F1E6, max_codepoint=0x1F1FF), min_size=1, max_size=4)
    .map("".join),  # regional-indicator flags (and odd counts of them)
    st.sampled_from(["你好", "東京", "こんにちは", "안녕", "مرحبا", "שלום", "สวัสดี", "नमस्ते", "ሰላም", "ᐊᐃ"]),  # no case
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),  # a bad decode's surrogates
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),  # or mojibake
)
TEXTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(PIECES, st.text(string.printable, max_size=8)), max_size=30).map(" ".join),
    st.lists(PIECES, max_size=30).map("".join),
    st.lists(st.one_of(CLUSTERS, PIECES), min_size=1, max_size=20).map("".join),
    st.lists(st.one_of(CLUSTERS, PIECES), min_size=1, max_size=20).map(" ".join),
)


@FAST
@given(TEXTS)
def test_frontend_total(text: str) -> None:
    try:
        chunks = FE(text)
    except ValueError as e:
        assert "nothing speakable" in str(e) or "inline phonemes" in str(e)
        return
    assert chunks
    for c in chunks:
        assert 1 <= len(c.phonemes) <= MAX_PHONEMES
        assert all(s in VOCAB for s in c.phonemes)
        assert len(c.tokens) == len(c.phonemes)
        end = 0
        for w in c.words:
            assert end <= w.start < w.end <= len(c.phonemes)
            end = w.end
        # word texts keep their punctuation: together they hold every non-space character of the chunk
        assert "".join("".join(w.text for w in c.words).split()) == "".join(c.text.split())
        assert c.words and c.pause_after >= 0


@FAST
@given(TEXTS)
def test_normalize_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert not any(c.isdigit() for c in once)


@FAST
@given(TEXTS)
def test_phonemize_only_vocab(text: str) -> None:
    try:
        phonemes = FE.phonemize(text)
    except ValueError as e:  # an inline override with symbols outside the vocabulary ("[x](//)")
        assert "inline phonemes" in str(e)
        return
    assert all(s in VOCAB for s in phonemes)


@pytest.mark.parametrize("text", [
    "5\ufe0f\u20e3", "#\ufe0f\u20e3 and *\ufe0f\u20e3", "Press 1\u20e3 now.", "\u0301\u0301x", " \u0301\u0302 ok",
    "\u20dd\u20de", "a\u0301\u0302\u0303b", "👨\u200d👩\u200d👧 family", "🇯🇵🇺", "☺\ufe0e and ☺\ufe0f",
    b"ok \xff\xfe\xc3 bytes".decode("utf-8", "surrogateescape"),
])
def test_grapheme_clusters_that_crashed_the_normalizer(text: str) -> None:
    """Issue 15, class 2: each of these ended in a TypeError from `unicodedata.category("")` (a dropped mark left
    an empty string that the next mark's check read). Catches: any exception other than "nothing speakable"."""
    once = normalize(text)
    assert normalize(once) == once
    try:
        chunks = FE(text)
    except ValueError as e:
        assert "nothing speakable" in str(e)
        return
    assert all(s in VOCAB for c in chunks for s in c.phonemes)


def test_big_inputs() -> None:
    for text in ["9" * 60, "w" * 2000, "😀" * 100 + " ok", "\u202eabc\u202c שלום עולם", "a\x07b\x1bc"]:
        chunks = FE(text)
        assert all(len(c.phonemes) <= MAX_PHONEMES for c in chunks)


@FAST
@given(st.text(alphabet="abcˈə", max_size=12), st.text(alphabet="abcˈə", max_size=12))
def test_the_aligners_edit_distance_is_levenshtein(a, b):
    """`phonemize._distance` (which drops the common prefix and suffix before its dynamic program) against the WER
    judge's plain edit distance over the same characters: equal for every pair. Catches a prefix and a suffix cut that
    overlap (aa vs aaa would come out 0) or a cut that drops a difference."""
    from voicegen.eval.wer import edit_distance
    from voicegen.text.phonemize import _distance

    assert _distance(a, b) == edit_distance(list(a), list(b))
    assert _distance(a, a + b) == len(b)


READINGS = st.lists(st.sampled_from(["", "a", "ab", "ˈba", "ca", "ə", "a b", "ab c", "a b c d e"]), min_size=1,
                    max_size=9)


@FAST
@given(READINGS, st.lists(st.integers(0, 3), max_size=9), st.lists(st.sampled_from(["a", "ba", "cə", "x"]),
                                                                      max_size=3))
def test_the_banded_alignment_is_the_full_search(per_word, merges, noise):
    """`phonemize._align` searches only the band of cells that can lie on a complete alignment: the same result as
    every cell, ties included. The phrase is made from the per-word readings as espeak makes it (some neighbours
    run together, each reading's words as tokens) with a few tokens changed or added, so that most cases line up
    and some do not. Catches a band too narrow (a different or missing alignment) or one cut at the wrong end."""
    from voicegen.text.phonemize import _align

    tokens, k = [], 0
    for i, reading in enumerate(per_word):
        parts = reading.split()
        if tokens and parts and k < len(merges) and merges[k] == 1:  # run together with the word before
            tokens[-1] += parts[0]
            parts = parts[1:]
        k += 1
        tokens.extend(parts)
    for j, extra in enumerate(noise):  # a changed token, then added ones
        if j == 0 and tokens:
            tokens[len(tokens) // 2] = extra
        else:
            tokens.insert(j % (len(tokens) + 1), extra)
    assert _align(tokens, per_word) == _align(tokens, per_word, banded=False)
