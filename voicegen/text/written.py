"""What was written, for the words that are said: the normalizer rewrites text for speech ("Dr." -> "Doctor",
"$4.20" -> "four dollars and twenty cents", "2025-03-03" -> "March third, twenty twenty-five"), and subtitles,
captions and segment texts should show the text as the user wrote it, timed by the words that speak it.

`WrittenText` lines up the spoken words of a whole text (the normalizer's words, in order) with the whitespace-
separated tokens of the original, by their letters and digits (lower-cased; difflib's longest matching blocks).
Tokens that match stay one word each; between two matches, the written tokens and the spoken words that replace
them form one run: a single written word ("$4.20") timed from the first of its spoken words to the last. Written
tokens with nothing spoken (a symbol the normalizer dropped) join the run before them; spoken words with nothing
written (none in practice) join the run before them, or the first run after them at the text's start.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

_NOT_KEY = re.compile(r"[\W_]+")
_TOKEN = re.compile(r"\S+")
_PUA = re.compile("[\ue000-\uf8ff]")


def _key(token: str) -> str:
    """What two spellings of one word share: its letters and digits, lower-cased (an inline override's placeholder
    character is its own key)."""
    return token if _PUA.fullmatch(token) else _NOT_KEY.sub("", token.lower())


WINDOW = 64
"""Spoken words aligned at a time (`_opcodes`): difflib's time grows with the product of the lengths it compares
where a word repeats ("la la la ..."), so long texts are aligned a window at a time."""


def _opcodes(a: _Keys, b: _Keys) -> Iterator[tuple[str, int, int, int, int]]:
    """difflib's opcodes turning the keys `a` into the keys `b` (written into spoken), in order. Keys that agree where
    they stand are matched as they come; from the first that differ, difflib searches a window of WINDOW spoken and
    2 * WINDOW written keys, whose opcodes are kept up to its last match, and the walk goes on from there (a window
    with no match grows until one is found, or to the end)."""
    i0 = j0 = 0
    size = WINDOW
    while True:
        same = 0  # keys that agree where they stand (most of a text) need no search
        while a.fill(i0 + same + 1) and b.fill(j0 + same + 1) and a.keys[i0 + same] == b.keys[j0 + same]:
            same += 1
        if same:
            yield "equal", i0, i0 + same, j0, j0 + same
            i0, j0 = i0 + same, j0 + same
        a.fill(i0 + 2 * size)
        b.fill(j0 + size)
        keys_a, keys_b = a.keys[i0 : i0 + 2 * size], b.keys[j0 : j0 + size]
        if not keys_a and not keys_b:
            return
        ops = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_opcodes()
        ops = [(tag, p + i0, q + i0, r + j0, t + j0) for tag, p, q, r, t in ops]
        if len(keys_a) < 2 * size and len(keys_b) < size:  # both ends of the text in this window
            yield from ops
            return
        last = max((k for k, op in enumerate(ops) if op[0] == "equal" and (op[2] > i0 or op[4] > j0)), default=None)
        if last is None or ops[last][2] == i0 and ops[last][4] == j0:
            size *= 2
            continue
        yield from ops[: last + 1]
        i0, j0, size = ops[last][2], ops[last][4], WINDOW


class _Keys:
    """The keys of a sequence of words (`keys`), computed as far as asked (`fill`)."""

    def __init__(self, words: Iterable[str]):
        self._words = iter(words)
        self.keys: list[str] = []

    def fill(self, n: int) -> bool:
        """Compute keys until there are `n` (a block at a time) -> whether there are."""
        if len(self.keys) < n:
            self.keys.extend(map(_key, itertools.islice(self._words, max(n - len(self.keys), WINDOW))))
        return len(self.keys) >= n


class WrittenText:
    """The runs of a text: `run_of(i)` is the run of spoken word i; `written(run)` its written text. Lined up as far
    as asked, a window at a time: a stream's first sentence does not wait for the rest of a long text.

    original: the text as written (inline overrides already replaced by their placeholder characters);
    spoken: the spoken words in order (read as far as needed); inline: placeholder -> (written text, phonemes) of each override;
    words_of: written token -> its spoken words, read alone (the normalizer's): it splits a stretch of rewritten
    tokens ("$4.20, Dr.") into a run per token where each token's own reading is found at either end of the
    stretch's spoken words; without it, such a stretch is one run.
    """

    def __init__(self, original: str, spoken: Iterable[str], inline: Mapping[str, tuple[str, str]] | None = None,
                 words_of: Callable[[str], Sequence[str]] | None = None):
        self._original = original
        self._inline = inline or {}
        self._words_of = words_of
        self._tokens = [m.span() for m in _TOKEN.finditer(original)]
        self._spoken = _Keys(spoken)
        self._ops = _opcodes(_Keys(original[a:b] for a, b in self._tokens), self._spoken)
        self._spans: list[list[int]] = []  # [start, end) in `original` per run
        self._runs: list[int | None] = []  # per spoken word so far; None: spoken before any run (the first run's)
        self._leading: int | None = None  # where written text with nothing spoken before the first run starts

    def run_of(self, word: int) -> int:
        """The run of spoken word `word`."""
        runs = self._runs
        while (word >= len(runs) or not self._spans) and self._advance():
            pass
        run = runs[word] if word < len(runs) else None
        return 0 if run is None else run

    def written(self, run: int) -> str:
        """The written text of a run, with each inline override's placeholder replaced by its written text."""
        while run + 1 >= len(self._spans) and self._advance():  # written tokens after it may still join it
            pass
        if not self._spans:
            return ""
        a, b = self._spans[run]
        text = self._original[a:b]
        return _PUA.sub(lambda m: self._inline.get(m.group(0), ("", ""))[0], text) if self._inline else text

    def _advance(self) -> bool:
        """Line up one more opcode's stretch; False once there is nothing left."""
        op = next(self._ops, None)
        if op is None:
            return False
        tag, i1, i2, j1, j2 = op
        if tag == "equal":
            pieces = [(i, i + 1, j, j + 1) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            pieces = self._split(i1, i2, j1, j2)
        for i1, i2, j1, j2 in pieces:
            if j2 == j1:  # written, not spoken: joins the run before (at the start: the first run)
                if self._spans:
                    self._spans[-1][1] = self._tokens[i2 - 1][1]
                elif self._leading is None:
                    self._leading = self._tokens[i1][0]
                continue
            if i2 > i1:
                start = self._tokens[i1][0] if self._leading is None else self._leading
                self._spans.append([start, self._tokens[i2 - 1][1]])
                self._leading = None
            # spoken, not written: the run before (at the start: the first run)
            self._runs.extend([len(self._spans) - 1 if self._spans else None] * (j2 - j1))
        return True

    def _split(self, i1: int, i2: int, j1: int, j2: int) -> list[tuple[int, int, int, int]]:
        """A stretch of written tokens [i1, i2) replaced by spoken words [j1, j2) -> pieces: one per token whose own
        reading (`words_of`) the stretch's spoken words begin or end with, the rest one piece."""
        if self._words_of is None or i2 - i1 < 2 or j2 == j1:
            return [(i1, i2, j1, j2)]
        keys = self._spoken.keys  # [j1, j2) are known: the opcode came from them
        own = [[k for k in map(_key, self._words_of(self._original[a:b])) if k] for a, b in self._tokens[i1:i2]]
        head: list[tuple[int, int, int, int]] = []
        while i1 < i2 and keys[j1 : j1 + len(own[0])] == own[0] and (own[0] or head):
            head.append((i1, i1 + 1, j1, j1 + len(own[0])))
            i1, j1, own = i1 + 1, j1 + len(own[0]), own[1:]
        tail: list[tuple[int, int, int, int]] = []
        while i1 < i2 and own and len(own[-1]) <= j2 - j1 and keys[j2 - len(own[-1]) : j2] == own[-1] and (
                own[-1] or i2 - i1 > 1):
            tail.insert(0, (i2 - 1, i2, j2 - len(own[-1]), j2))
            i2, j2, own = i2 - 1, j2 - len(own[-1]), own[:-1]
        middle = [(i1, i2, j1, j2)] if i2 > i1 or j2 > j1 else []
        return head + middle + tail
