"""The text frontend: written text -> chunks of model phonemes with word spans and pauses.

``Frontend()(text)`` normalizes, splits into sentences, phonemizes every word in context, and packs each
sentence into chunks of at most ``MAX_PHONEMES`` symbols, cutting long sentences at clause punctuation
first and between words second (a single enormous word is cut inside, so nothing ever fails). Each chunk also
carries its stretch of the text as written, word by word (``Chunk.written_words``: "$4.20" where the model says
"four dollars and twenty cents"; ``voicegen.text.written``), which segments and subtitles show.

Pronunciation overrides, strongest first:

* inline: ``[Kokoro](/kˈOkəɹO/)`` speaks the bracketed text with the phonemes between the slashes;
* lexicon: ``Frontend(lexicon={"voicegen": "vˈYsʤɛn"})`` replaces whole words, case-insensitively;
* built-in: a capital "A" spelled beside other capital letters ("A P I") is the letter, not the article.

Both kinds of override are written in the model's own symbols (see ``VOCAB``) and used verbatim; phonemes that
are empty or hold a symbol the model does not know raise ValueError naming the symbols (never dropped silently). Noun/verb homographs (record, present, use, ...) are read from their
neighbours (``voicegen.text.homographs``); the rest (read, lead, live, ...) are left to espeak-ng.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from voicegen.constants import MAX_PHONEMES
from voicegen.text.homographs import homograph_ipa
from voicegen.text.normalize import normalize
from voicegen.text.phonemize import (
    DEFAULT_ALPHABET,
    GLUE,
    check_alphabet,
    check_language,
    espeak_words,
    ipa_to_vocab,
    only_vocab,
)
from voicegen.text.split import CLAUSE_PAUSE, WORD_PAUSE, split_sentences
from voicegen.text.vocab import VOCAB
from voicegen.text.written import WrittenText

INLINE = re.compile(r"\[([^\[\]\n]+)\]\(/([^/\n]*)/\)")
"""Inline phoneme override: ``[written text](/phonemes/)``."""

_PUA_FIRST, _PUA_LAST = 0xE000, 0xF8FF
_PUA = re.compile("[\ue000-\uf8ff]")
_TOKEN = re.compile(r"[\ue000-\uf8ff]|[^\W_]+(?:['-][^\W_]+)*|\s+|.", re.DOTALL)
_LETTER_A = {"misaki": "ˈA", "espeak": "ˈeɪ"}
_LAST_SPACE = re.compile(r"\s+(?=\S*$)")


@dataclass(frozen=True)
class WordSpan:
    """A word of ``Chunk.text`` and the range of ``Chunk.phonemes`` that speaks it.

    ``text`` keeps the punctuation written against the word (``"Hello,``, ``world.``, ``(yes)``), so that
    subtitles built from word texts read like ``Chunk.text``: joined with spaces, a chunk's word texts give
    it back exactly unless two words touch through punctuation (``x/y`` -> ``x/``, ``y``). Punctuation
    standing alone between spaces (``x — y``) goes with the word before (``x —``). ``start:end`` covers
    the word's phonemes only, never the punctuation's.
    """

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """One model item: phonemes (1..MAX_PHONEMES vocabulary symbols) and what they say.

    ``text`` and ``words`` are what is said (the normalized text: "four dollars and twenty cents"); ``written``
    and ``written_words`` the same stretch as the user wrote it ("$4.20"), each written word timed by the phonemes
    of the spoken words that say it (``voicegen.text.written``): what segments and subtitles show. (Left empty by
    whoever makes a chunk by hand, they mean ``text`` and ``words``.)"""

    text: str
    phonemes: str
    words: tuple[WordSpan, ...]
    pause_after: float
    written: str = ""
    written_words: tuple[WordSpan, ...] = ()

    @property
    def tokens(self) -> list[int]:
        """Token ids of ``phonemes``, one per symbol, without the wrapping pad ids."""
        return [VOCAB[c] for c in self.phonemes]


@dataclass(frozen=True)
class _Piece:
    """A word, a space or a punctuation mark of a sentence, with its phonemes."""

    text: str
    phonemes: str
    kind: str  # "word" | "space" | "glue" (a space in the text, none in the phonemes) | "punct"
    index: int = -1  # words: the position among the text's spoken words


class Frontend:
    """Reusable, thread-safe text frontend for one language.

    Args:
        language: espeak-ng voice, e.g. ``"en-us"``; English normalization applies to ``en*``.
            ValueError if espeak-ng does not know it.
        lexicon: word -> phonemes in model symbols; matched case-insensitively on whole words.
        alphabet: how espeak's IPA becomes model symbols, ``"misaki"`` or ``"espeak"``
            (:data:`voicegen.text.phonemize.ALPHABETS`).
    """

    def __init__(self, language: str = "en-us", lexicon: Mapping[str, str] | None = None, alphabet: str = DEFAULT_ALPHABET):
        check_language(language)
        check_alphabet(alphabet)
        self.language = language
        self.alphabet = alphabet
        self.lexicon = {k.lower(): check_phonemes(v, f"lexicon entry {k!r}") for k, v in (lexicon or {}).items()}

    # ------------------------------------------------------------------ public

    def phonemize(self, text: str) -> str:
        """One piece of text -> its phonemes in model symbols (normalized first; no length limit)."""
        text, inline = self._extract_inline(text)
        pieces = self._pieces(normalize(text, self.language), inline)
        return "".join(p.phonemes for p in pieces).strip()

    def __call__(self, text: str) -> list[Chunk]:
        """Text -> chunks in speaking order. Raises ValueError if nothing in it can be spoken."""
        chunks = [chunk for chunk, _ in self.chunks(text)]
        if not chunks:
            raise ValueError(f"nothing speakable in the text: {text[:80]!r}")
        return chunks

    def chunks(self, text: str) -> Iterator[tuple[Chunk, bool]]:
        """Text -> (chunk, whether more follow) for the same chunks as calling the frontend, phonemized a sentence
        at a time as they are taken, so that a streaming caller renders the first before the rest of a long text
        is phonemized. Each chunk comes once the next speakable one is known (a sentence of bare punctuation after
        it lengthens its pause); yields nothing if nothing in the text can be spoken."""
        text, inline = self._extract_inline(text)
        normalized = normalize(text, self.language)
        sentences = split_sentences(normalized)
        written = None  # a text the normalizer left alone is said as written: its chunks' words are the written ones
        if normalized != text:
            written = WrittenText(text, (t for s in sentences for t in _TOKEN.findall(s.text) if _is_word(t)), inline,
                                  lambda token: _spoken_words(token, self.language))
        last: Chunk | None = None
        first, shown = 0, -1  # the sentence's first word among the text's; the last written run shown
        for sentence in sentences:
            pieces = self._pieces(sentence.text, inline, first)
            first += len({p.index for p in pieces if p.kind == "word"})  # its words (a long one cut: one index)
            groups = _pack(pieces, MAX_PHONEMES)
            for k, group in enumerate(groups):
                pause = sentence.pause_after if k == len(groups) - 1 else _cut_pause(group)
                chunk = _chunk(group, pause)
                if chunk is not None:
                    if written is not None:
                        chunk, shown = _with_written(chunk, group, written, shown)
                    else:
                        chunk = dataclasses.replace(chunk, written=chunk.text, written_words=chunk.words)
                    if last is not None:
                        yield last, True
                    last = chunk
                elif last is not None:  # nothing speakable (bare punctuation): keep its pause
                    last = dataclasses.replace(last, pause_after=max(last.pause_after, pause))
        if last is not None:
            yield last, False

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _extract_inline(text: str) -> tuple[str, dict[str, tuple[str, str]]]:
        """Replace each ``[text](/phonemes/)`` with a private-use placeholder character."""
        text = _PUA.sub(" ", text)
        inline: dict[str, tuple[str, str]] = {}

        def sub(m: re.Match[str]) -> str:
            phonemes = check_phonemes(m.group(2), f"inline phonemes {m.group(0)!r}")
            if len(inline) > _PUA_LAST - _PUA_FIRST:
                return m.group(1)
            mark = chr(_PUA_FIRST + len(inline))
            inline[mark] = (" ".join(m.group(1).split()), phonemes)
            return f" {mark} "

        return INLINE.sub(sub, text), inline

    def _pieces(self, sentence: str, inline: Mapping[str, tuple[str, str]], first: int = 0) -> list[_Piece]:
        """Normalized sentence -> pieces; words get phonemes (inline, lexicon, or espeak in context) and their
        position among the text's words (`first`: the sentence's first word's)."""
        tokens = _TOKEN.findall(sentence)
        words = [t for t in tokens if _is_word(t) and t not in inline]
        spoken = iter(espeak_words(tuple(words), self.language))
        word_tokens = [t for t in tokens if _is_word(t)]
        pieces: list[_Piece] = []
        w = 0
        clause_start = True  # for homographs: "Close the door; wind the clock."
        for t in tokens:
            if t in inline:
                pieces.append(_Piece(inline[t][0], inline[t][1], "word", first + w))
                w += 1
                clause_start = False
            elif _is_word(t):
                ipa = next(spoken)
                if ipa.startswith(GLUE):  # espeak ran this word into the one before: no space between them
                    ipa = ipa[len(GLUE):]
                    if (len(pieces) >= 2 and pieces[-1].kind == "space" and pieces[-2].kind == "word"
                            and t.lower() not in self.lexicon and pieces[-2].text.lower() not in self.lexicon
                            and pieces[-2].text not in inline):
                        pieces[-1] = _Piece(" ", "", "glue")  # the text keeps its space
                if t.lower() in self.lexicon:
                    ph = self.lexicon[t.lower()]
                elif t == "A" and _beside_letter(word_tokens, w):
                    ph = _LETTER_A[self.alphabet]
                else:
                    if self.language.lower().startswith("en"):
                        ipa = homograph_ipa(word_tokens, w, clause_start) or ipa
                    ph = ipa_to_vocab(ipa, self.language, self.alphabet)
                pieces.append(_Piece(t, ph, "word", first + w))
                w += 1
                clause_start = False
            elif t.isspace():
                pieces.append(_Piece(" ", " ", "space"))
            else:
                pieces.append(_Piece(t, only_vocab(t), "punct"))
                clause_start = clause_start or any(c in t for c in ".!?;:—…")
        return [q for p in pieces for q in _split_word(p, MAX_PHONEMES)]


SUGGEST = {"g": "ɡ", "r": "ɹ", "'": "ˈ", "ɝ": "ɜɹ", "ɫ": "l"}
"""Look-alike symbols people type, and the model symbol they probably mean (for the error message)."""


def check_phonemes(phonemes: str, what: str) -> str:
    """Phonemes of an override, checked: ValueError naming `what` and every symbol outside ``VOCAB`` (with a
    look-alike the model knows, where there is one), or if there are none at all."""
    if not isinstance(phonemes, str) or not phonemes.strip():
        raise ValueError(f"{what}: the phonemes are empty; write them in the model's symbols (voicegen.text.VOCAB)")
    unknown = sorted({c for c in phonemes if c not in VOCAB}, key=phonemes.index)
    if unknown:
        named = ", ".join(f"{c!r} (U+{ord(c):04X}" + (f", did you mean {SUGGEST[c]!r}?)" if c in SUGGEST else ")")
                          for c in unknown)
        raise ValueError(f"{what}: symbols the model does not know: {named}; use only the symbols of "
                         "voicegen.text.VOCAB")
    return phonemes


@functools.lru_cache(maxsize=4096)
def _spoken_words(token: str, language: str) -> tuple[str, ...]:
    """The words a written token is read as alone (`WrittenText` lines these up with the words said in context)."""
    return tuple(t for t in _TOKEN.findall(normalize(token, language)) if _is_word(t))


def _is_word(token: str) -> bool:
    return token[0].isalnum() or bool(_PUA.match(token))


def _beside_letter(words: list[str], i: int) -> bool:
    near = words[max(0, i - 1):i] + words[i + 1:i + 2]
    return any(len(x) == 1 and x.isupper() for x in near)


def _split_word(piece: _Piece, limit: int) -> list[_Piece]:
    """Cut a word whose phonemes exceed ``limit`` into parts (text cut in proportion)."""
    n = len(piece.phonemes)
    if piece.kind != "word" or n <= limit:
        return [piece]
    parts = -(-n // limit)
    out = []
    for k in range(parts):
        a, b = k * n // parts, (k + 1) * n // parts
        ta, tb = k * len(piece.text) // parts, (k + 1) * len(piece.text) // parts
        out.append(_Piece(piece.text[ta:tb] or piece.text, piece.phonemes[a:b], "word", piece.index))
    return out


def _pack(pieces: list[_Piece], limit: int) -> list[list[_Piece]]:
    """Group pieces into runs of at most ``limit`` phonemes: cut after clause punctuation if one lies in
    the last three quarters of the run, else at the last space, else anywhere between pieces."""
    groups: list[list[_Piece]] = []
    start = 0
    while start < len(pieces):
        total, end, punct, space = 0, start, None, None
        while end < len(pieces) and total + len(pieces[end].phonemes) <= limit:
            total += len(pieces[end].phonemes)
            end += 1
            if pieces[end - 1].kind == "punct" and pieces[end - 1].text in CLAUSE_PAUSE and total >= limit // 4:
                punct = end
            elif pieces[end - 1].kind == "space":
                space = end
        if end == len(pieces):
            groups.append(pieces[start:])
            break
        cut = punct or space or max(end, start + 1)
        groups.append(pieces[start:cut])
        start = cut
    return groups


def _cut_pause(group: list[_Piece]) -> float:
    for p in reversed(group):
        if p.kind == "punct" and p.text in CLAUSE_PAUSE:
            return CLAUSE_PAUSE[p.text]
        if p.kind == "word":
            break
    return WORD_PAUSE


def _chunk(group: list[_Piece], pause: float) -> Chunk | None:
    """Pieces -> Chunk with word spans, without outer or doubled spaces; None if no word has phonemes."""
    text: list[str] = []
    phonemes: list[str] = []
    spoken: list[tuple[int, int]] = []  # text range of each word that has phonemes
    spans: list[tuple[int, int]] = []  # and its phoneme range
    chars, pos, last = 0, 0, " "  # last: the last phoneme symbol so far (a space at the start)
    for p in group:
        if p.kind == "space":
            if last != " ":
                text.append(" ")
                phonemes.append(" ")
                chars, pos, last = chars + 1, pos + 1, " "
            continue
        if p.kind == "glue":  # words espeak runs together: a space between them in the text only
            text.append(" ")
            chars += 1
            continue
        last = p.phonemes[-1:] or last
        if p.kind == "word" and p.phonemes:
            spoken.append((chars, chars + len(p.text)))
            spans.append((pos, pos + len(p.phonemes)))
        text.append(p.text)
        phonemes.append(p.phonemes)
        chars += len(p.text)
        pos += len(p.phonemes)
    if not spans:
        return None
    joined = "".join(text)
    words = tuple(WordSpan(joined[a:b].strip(), start, end)
                  for (a, b), (start, end) in zip(_with_punctuation(joined, spoken), spans))
    return Chunk(joined.strip(), "".join(phonemes).rstrip(" "), words, pause)


def _with_written(chunk: Chunk, group: list[_Piece], written: WrittenText, shown: int) -> tuple[Chunk, int]:
    """The chunk with its written words (`WrittenText` runs after `shown`, the last run an earlier chunk showed:
    a run that an earlier chunk began stays with it) -> (chunk, the last run shown)."""
    indices = [p.index for p in group if p.kind == "word" and p.phonemes]  # one per word span, in order
    words: list[WordSpan] = []
    for word, index in zip(chunk.words, indices):
        run = written.run_of(index)
        if run <= shown and not words:
            continue
        if run <= shown:  # the run of the word before: one written word
            words[-1] = WordSpan(words[-1].text, words[-1].start, word.end)
        else:
            words.append(WordSpan(written.written(run), word.start, word.end))
            shown = run
    if not words or not all(w.text.strip() for w in words):  # every word in a run shown before: as it is said
        return dataclasses.replace(chunk, written=chunk.text, written_words=chunk.words), shown
    return dataclasses.replace(chunk, written=" ".join(w.text for w in words), written_words=tuple(words)), shown


def _with_punctuation(text: str, words: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Widen the words' text ranges over the punctuation around them. Between two words, what comes before
    the last space goes to the word before and the rest to the word after (all of it to the word before if
    there is no space: ``x/y`` -> ``x/``, ``y``); what precedes the first word and follows the last goes
    to them. The ranges then tile ``text`` but for the spaces between them."""
    starts, ends = [0], []
    for (_, end), (start, _) in itertools.pairwise(words):
        space = _LAST_SPACE.search(text, end, start)
        ends.append(space.start() if space else start)
        starts.append(space.end() if space else start)
    ends.append(len(text))
    return list(zip(starts, ends))
