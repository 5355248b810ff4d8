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
import re
from collections.abc import Callable, Mapping, Sequence

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


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes turning `a` into `b` (written keys into spoken ones), found a window of WINDOW spoken and
    2 * WINDOW written keys at a time: each window's opcodes are kept up to its last match, and the next window
    starts there (a window with no match grows until one is found, or to the end)."""
    out: list[tuple[str, int, int, int, int]] = []
    i0 = j0 = 0
    size = WINDOW
    while i0 < len(a) or j0 < len(b):
        i1, j1 = min(len(a), i0 + 2 * size), min(len(b), j0 + size)
        ops = difflib.SequenceMatcher(None, a[i0:i1], b[j0:j1], autojunk=False).get_opcodes()
        ops = [(tag, p + i0, q + i0, r + j0, t + j0) for tag, p, q, r, t in ops]
        if i1 == len(a) and j1 == len(b):
            out.extend(ops)
            break
        last = max((k for k, op in enumerate(ops) if op[0] == "equal" and (op[2] > i0 or op[4] > j0)), default=None)
        if last is None or ops[last][2] == i0 and ops[last][4] == j0:
            size *= 2
            continue
        out.extend(ops[: last + 1])
        i0, j0, size = ops[last][2], ops[last][4], WINDOW
    return out


class WrittenText:
    """The runs of a text: `run_of[i]` is the run of spoken word i; `written(run)` its written text.

    original: the text as written (inline overrides already replaced by their placeholder characters);
    spoken: the spoken words in order; inline: placeholder -> (written text, phonemes) of each override;
    words_of: written token -> its spoken words, read alone (the normalizer's): it splits a stretch of rewritten
    tokens ("$4.20, Dr.") into a run per token where each token's own reading is found at either end of the
    stretch's spoken words; without it, such a stretch is one run.
    """

    def __init__(self, original: str, spoken: Sequence[str], inline: Mapping[str, tuple[str, str]] | None = None,
                 words_of: Callable[[str], Sequence[str]] | None = None):
        self._original = original
        self._inline = inline or {}
        self._words_of = words_of
        self._tokens = [m.span() for m in _TOKEN.finditer(original)]
        keys = [_key(w) for w in spoken]
        pieces: list[tuple[int, int, int, int]] = []  # (written tokens [i1, i2), spoken words [j1, j2))
        for tag, i1, i2, j1, j2 in _opcodes([_key(original[a:b]) for a, b in self._tokens], keys):
            if tag == "equal":
                pieces.extend((i, i + 1, j, j + 1) for i, j in zip(range(i1, i2), range(j1, j2)))
            else:
                pieces.extend(self._split(i1, i2, j1, j2, keys))
        self._spans: list[list[int]] = []  # [start, end) in `original` per run
        run_of: list[int | None] = [None] * len(spoken)
        leading: int | None = None  # where written text with nothing spoken before the first run starts
        for i1, i2, j1, j2 in pieces:
            if j2 == j1:  # written, not spoken: joins the run before (at the start: the first run)
                if self._spans:
                    self._spans[-1][1] = self._tokens[i2 - 1][1]
                elif leading is None:
                    leading = self._tokens[i1][0]
                continue
            if i2 > i1:
                self._spans.append([self._tokens[i1][0] if leading is None else leading, self._tokens[i2 - 1][1]])
                leading = None
            # spoken, not written: the run before (at the start: the first run, below)
            run_of[j1:j2] = [len(self._spans) - 1 if self._spans else None] * (j2 - j1)
        first_run = next((r for r in run_of if r is not None), 0)
        self.run_of: list[int] = [first_run if r is None else r for r in run_of]

    def _split(self, i1: int, i2: int, j1: int, j2: int, keys: Sequence[str]) -> list[tuple[int, int, int, int]]:
        """A stretch of written tokens [i1, i2) replaced by spoken words [j1, j2) -> pieces: one per token whose own
        reading (`words_of`) the stretch's spoken words begin or end with, the rest one piece."""
        if self._words_of is None or i2 - i1 < 2 or j2 == j1:
            return [(i1, i2, j1, j2)]
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

    def written(self, run: int) -> str:
        """The written text of a run, with each inline override's placeholder replaced by its written text."""
        if not self._spans:
            return ""
        a, b = self._spans[run]
        text = self._original[a:b]
        return _PUA.sub(lambda m: self._inline.get(m.group(0), ("", ""))[0], text) if self._inline else text
