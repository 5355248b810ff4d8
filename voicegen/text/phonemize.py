"""Words -> Kokoro phoneme symbols, through espeak-ng (via phonemizer) and an IPA -> vocabulary map.

espeak-ng comes from the ``espeakng_loader`` wheel, set up lazily on first use. espeak keeps global state,
so every call into it holds one process-wide lock; results are cached per (language, words).

Two ways to turn espeak's IPA into model symbols (:data:`ALPHABETS`, chosen per :class:`Frontend`):

* ``"espeak"`` (the default): espeak's IPA as it is (diphthongs as two vowels, length marks kept), filtered to
  the model's vocabulary. The built-in voices are Japanese speakers; they are clearer this way (Whisper WER,
  benchmarks/RESULTS.md, "phoneme alphabet").
* ``"misaki"``: the alphabet Kokoro v1.0's English voices were trained on: diphthongs as single capital
  letters (eɪ -> A, aɪ -> I, aʊ -> W, oʊ -> O, ɔɪ -> Y), affricates as ligatures (tʃ -> ʧ, dʒ -> ʤ), no vowel
  length, r-coloured vowels spelled out (ɚ -> əɹ, ɜː -> ɜɹ): misaki's espeak-fallback table, plus a fix for a
  syllabic n after a glottal stop. Worth trying with English voice files.
"""

from __future__ import annotations

import functools
import logging
import re
import threading

from voicegen.text.vocab import SYMBOLS

_ESPEAK_LOCK = threading.Lock()
_BACKENDS: dict[str, object] = {}
_LIBRARY_READY = False

TIE = "^"
"""Tie character we ask espeak to put inside multi-letter phonemes (so "e^ɪ" is one diphthong)."""

# Longest first, applied in order; the tie marks keep diphthongs apart from vowel sequences across syllables.
IPA_TO_VOCAB: tuple[tuple[str, str], ...] = tuple(sorted({
    "\u0303": "", "a^ɪ": "I", "a^ʊ": "W", "d^ʒ": "ʤ", "e": "A", "e^ɪ": "A", "r": "ɹ", "t^ʃ": "ʧ",
    "x": "k", "ç": "k", "ɐ": "ə", "ɔ^ɪ": "Y", "ə^l": "ᵊl", "ɚ": "əɹ", "ɬ": "l", "ʔ": "t", "ʔn": "tᵊn",
    "ʔˌn\u0329": "tᵊn", "ʔn\u0329": "tᵊn", "ʲ": "",
}.items(), key=lambda kv: -len(kv[0])))
"""espeak IPA fragment -> Kokoro symbols (misaki's table for en-us)."""

US_FIXES: tuple[tuple[str, str], ...] = (
    ("o^ʊ", "O"), ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("ː", ""), ("o", "ɔ"), (TIE, ""),
)
"""Applied after IPA_TO_VOCAB for American English: oʊ -> O, r-coloured ɜ, no length marks (as misaki).
How it compares with raw espeak IPA for the built-in voices: benchmarks/RESULTS.md, "phoneme alphabet"."""

GB_FIXES: tuple[tuple[str, str], ...] = (
    ("iə", "ɪə"), ("ə^ʊ", "Q"), ("o", "ɔ"), (TIE, ""),
)
"""Applied after IPA_TO_VOCAB for British English (misaki's en-gb choices: əʊ -> Q, length kept)."""

OTHER_FIXES: tuple[tuple[str, str], ...] = (("ʲ", "j"), ("r", "ɹ"), ("x", "k"), ("ɬ", "l"), (TIE, ""))
"""For non-English espeak voices: raw IPA with a few substitutions (as Kokoro does for es/fr/it/pt/hi)."""

_SYLLABIC = re.compile(r"(\S)\u0329")


ALPHABETS = ("misaki", "espeak")
"""How English espeak IPA becomes model symbols: ``"misaki"`` maps it to misaki's alphabet (the one Kokoro's
English voices were trained on); ``"espeak"`` keeps espeak's IPA (diphthongs as two vowels, length marks) and
only drops what the model does not know."""
DEFAULT_ALPHABET = "espeak"
"""The alphabet a Frontend speaks English in unless given another (benchmarks/RESULTS.md, "phoneme alphabet")."""


def check_alphabet(alphabet: str) -> None:
    """Raise ValueError unless ``alphabet`` is one of :data:`ALPHABETS`."""
    if alphabet not in ALPHABETS:
        raise ValueError(f"unknown phoneme alphabet {alphabet!r}; choose one of {', '.join(ALPHABETS)}")


def ipa_to_vocab(ipa: str, language: str = "en-us", alphabet: str = "misaki") -> str:
    """espeak IPA (with ``^`` ties) -> a string of Kokoro vocabulary symbols only."""
    check_alphabet(alphabet)
    language = language.lower()
    if alphabet == "espeak":
        return only_vocab(ipa.replace(TIE, ""))
    british = language in ("en-gb", "en-gb-x-rp", "en-gb-scotland")
    if british:
        ipa = ipa.replace("e^ə", "ɛː")
    if language.startswith("en"):
        for old, new in IPA_TO_VOCAB:
            ipa = ipa.replace(old, new)
        ipa = _SYLLABIC.sub(r"ᵊ\1", ipa)
        fixes = GB_FIXES if british else US_FIXES
    else:
        fixes = OTHER_FIXES
    for old, new in fixes:
        ipa = ipa.replace(old, new)
    return only_vocab(ipa)


def only_vocab(s: str) -> str:
    """Drop every character that is not a model symbol."""
    return "".join(c for c in s if c in SYMBOLS)


def setup_espeak() -> None:
    """Point phonemizer at the espeak-ng library and data shipped in ``espeakng_loader`` (once)."""
    global _LIBRARY_READY
    if _LIBRARY_READY:
        return
    import espeakng_loader
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    _LIBRARY_READY = True


def _backend(language: str):  # -> phonemizer EspeakBackend; call with _ESPEAK_LOCK held
    backend = _BACKENDS.get(language)
    if backend is None:
        setup_espeak()
        from phonemizer.backend import EspeakBackend

        quiet = logging.getLogger("voicegen.text.espeak")
        quiet.setLevel(logging.ERROR)
        backend = EspeakBackend(language, preserve_punctuation=False, with_stress=True, tie=TIE,
                                language_switch="remove-flags", logger=quiet)
        _BACKENDS[language] = backend
    return backend


def check_language(language: str) -> None:
    """Raise ValueError unless espeak-ng has a voice for ``language`` (e.g. "en-us", "fr-fr")."""
    with _ESPEAK_LOCK:
        setup_espeak()
        from phonemizer.backend import EspeakBackend

        ok = EspeakBackend.is_supported_language(language)
    if not ok:
        raise ValueError(f"espeak-ng has no voice for language {language!r}")


def _espeak(lines: list[str], language: str) -> list[str]:
    """Raw espeak IPA, one string per input line; words separated by single spaces."""
    from phonemizer.separator import Separator

    with _ESPEAK_LOCK:
        out = _backend(language).phonemize(lines, separator=Separator(word=" ", phone=""), strip=True, njobs=1)
    return [" ".join(o.split()) for o in out]


def _bare(ipa: str) -> str:
    return re.sub(r"[ˈˌː^ ]", "", ipa)


GLUE = "\u2060"
"""Prefix of a word's IPA in :func:`espeak_words` output when espeak ran it together with the word before
("out of" -> "aʊɾəv"): the frontend joins the two without a space, so the model hears the phrase reading."""


def _distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings. Their common prefix and suffix are dropped first (they add nothing
    to the distance): in the frontend's alignments most pairs are equal or nearly so, and these distances are most
    of an alignment's cost."""
    if a == b:
        return 0
    start, shorter = 0, min(len(a), len(b))
    while start < shorter and a[start] == b[start]:
        start += 1
    end = 0
    while end < shorter - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if not a or not b:
        return len(a) + len(b)
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _split_merged(token: str, words: list[str]) -> list[str]:
    """Cut one phrase token that covers several words into one piece per word, at the cuts whose pieces are
    closest (edit distance of the bare symbols) to the words' own readings. Every piece is non-empty."""
    k, n = len(words), len(token)
    if n < k:
        return [token] + [""] * (k - 1)
    targets = [_bare(w) for w in words]
    # best[c][p]: least cost of cutting token[:p] into the first c words' pieces
    best = [[None] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0
    for c in range(1, k + 1):
        for p in range(c, n - (k - c) + 1):
            for q in range(c - 1, p):
                if best[c - 1][q] is None:
                    continue
                cost = best[c - 1][q] + _distance(_bare(token[q:p]), targets[c - 1])
                if best[c][p] is None or cost < best[c][p]:
                    best[c][p], cut[c][p] = cost, q
    pieces, p = [], n
    for c in range(k, 0, -1):
        q = cut[c][p]
        pieces.append(token[q:p])
        p = q
    return pieces[::-1]


def _align(phrase: list[str], per_word: list[str], banded: bool = True) -> list[str] | None:
    """Give each word its part of the in-context phrase output ``phrase`` (a token list), using the
    word-by-word output ``per_word`` as a guide, by a least-edit-distance alignment of the whole sequence.

    A word that espeak reads as several words takes that many tokens; a token that covers several words
    ("on the" -> "ɔnðə") is cut between them (:func:`_split_merged`) and the pieces after the first are
    marked with :data:`GLUE`. Returns ``None`` if the two cannot be lined up. ``banded=False`` searches every
    cell (the same result, slower: for tests)."""
    n, m = len(per_word), len(phrase)
    counts = [len(w.split()) for w in per_word]
    # Every move keeps or raises d = (tokens the words so far read as alone) - (phrase tokens taken), from 0 at the
    # start to `excess` at the end ("take" and "none" keep it, a merge of k words raises it by k - 1), so only cells
    # with 0 <= d <= excess lie on a complete alignment: the band searched below, a few cells per word instead of
    # every token. Cells outside it can only lead outside it, so the result is the full search's, ties included.
    alone = [0]
    for c in counts:
        alone.append(alone[-1] + c)
    excess = alone[n] - m
    if excess < 0 and banded:  # more tokens in the phrase than the words read alone: no alignment of these moves
        return None
    # the bare symbols of each word and token, once: _bare of a concatenation is the concatenation of the _bare's
    bare_words, bare_tokens = [_bare(w) for w in per_word], [_bare(t) for t in phrase]
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move: dict[tuple[int, int], tuple[str, int]] = {}
    cost[0][0] = 0

    def relax(i: int, j: int, value: float, how: tuple[str, int]) -> None:
        if value < cost[i][j]:
            cost[i][j], move[i, j] = value, how

    for i in range(n):
        for j in range(max(0, alone[i] - excess), min(m, alone[i]) + 1) if banded else range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if counts[i] == 0:  # espeak says nothing for this word
                relax(i + 1, j, here, ("none", 0))
                continue
            c = counts[i]
            if j + c <= m:
                value = here + _distance(bare_words[i], "".join(bare_tokens[j:j + c]))
                relax(i + 1, j + c, value, ("take", c))
            if j < m:
                for k in range(2, 5):
                    if i + k > n or counts[i + k - 1] != 1 or counts[i] != 1:
                        break
                    value = here + _distance("".join(bare_words[i:i + k]), bare_tokens[j])
                    relax(i + k, j + 1, value, ("merge", k))
    if cost[n][m] == inf:
        return None
    out: list[str] = []
    i, j = n, m
    while i or j:
        how, k = move[i, j]
        if how == "none":
            out.append("")
            i -= 1
        elif how == "take":
            out.append(" ".join(phrase[j - k:j]))
            i, j = i - 1, j - k
        else:
            pieces = _split_merged(phrase[j - 1], per_word[i - k:i])
            out.extend(reversed([pieces[0]] + [GLUE + p for p in pieces[1:]]))
            i, j = i - k, j - 1
    return out[::-1]


@functools.lru_cache(maxsize=4096)
def espeak_words(words: tuple[str, ...], language: str = "en-us") -> tuple[str, ...]:
    """Raw espeak IPA for each word, pronounced in context (the whole word sequence at once).

    Returns one string per word (it may hold spaces when espeak reads one token as several words,
    or be empty when espeak says nothing for it).
    """
    if not words:
        return ()
    phrase = _espeak([" ".join(words)], language)[0].split()
    if len(phrase) == len(words):  # one token per word: the reading in context, word by word
        return tuple(phrase)
    per_word = _espeak(list(words), language)  # the guide for lining up the phrase (one espeak call per word)
    aligned = _align(phrase, per_word)
    return tuple(aligned if aligned is not None else per_word)
