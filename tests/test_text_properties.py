"""Property tests: the frontend never fails except with ValueError, and never emits junk."""

import string

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
TEXTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(PIECES, st.text(string.printable, max_size=8)), max_size=30).map(" ".join),
    st.lists(PIECES, max_size=30).map("".join),
)


@FAST
@given(TEXTS)
def test_frontend_total(text: str) -> None:
    try:
        chunks = FE(text)
    except ValueError as e:
        assert "nothing speakable" in str(e)
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
    assert all(s in VOCAB for s in FE.phonemize(text))


def test_big_inputs() -> None:
    for text in ["9" * 60, "w" * 2000, "😀" * 100 + " ok", "\u202eabc\u202c שלום עולם", "a\x07b\x1bc"]:
        chunks = FE(text)
        assert all(len(c.phonemes) <= MAX_PHONEMES for c in chunks)
