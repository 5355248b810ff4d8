"""What was written, for the words that are said: the normalizer rewrites text for speech ("Dr." -> "Doctor",
"$4.20" -> "four dollars and twenty cents", "2025-03-03" -> "March third, twenty twenty-five"), and subtitles,
captions and segment texts should show the text as the user wrote it, timed by the words that speak it.

`WrittenText` lines up the spoken words of a whole text (the normalizer's words, in order) with the whitespace-
separated tokens of the original, each token read alone by the normalizer ("$4.20," -> four dollars and twenty
cents), by their letters and digits (lower-cased; a least-edit alignment, a window at a time). Read
alone, most tokens say what they say in context, so the two sides agree but where context changed a reading
("Mr." before a name, a date over three tokens): those stretches become one run of their written tokens. Each run
is one written word, timed from the first of its spoken words to the last. Written tokens with nothing spoken (a
symbol the normalizer dropped) join the run before them; spoken words with nothing written (none in practice) join
the run before them, or the first run at the text's start.
"""

from __future__ import annotations

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
"""Keys computed at a time (`_Keys.fill`)."""

SEARCH = 8
"""Spoken words in the first window aligned at a disagreement (`_opcodes`), doubled while it holds no match: a
stretch read differently in context is a few words long, and an alignment's time grows with the product of the
lengths it compares (8 words: ~0.08 ms; 64: ~0.7 ms)."""

BAND = 16
"""How far (in keys) a least-edit alignment may stray from the diagonal of its window (`_edit_opcodes`): a stretch the
normalizer reads differently in context than alone differs by a few words, never by sixteen."""


def _edit_opcodes(a: Sequence[str], b: Sequence[str], free_end: bool) -> list[tuple[str, int, int, int, int]]:
    """Opcodes (difflib's form: equal, replace, delete, insert) of a least-edit alignment of the keys `a` with `b`:
    a key kept costs nothing, one replaced, dropped or added costs 1, the path stays within BAND of the diagonal
    (and reaches both ends unless `free_end`: then it ends once every key of `b` is aligned, with as few of `a`'s as
    that costs, or where `a` runs out, the rest unaligned), and of equal costs the more diagonal step wins. Unlike
    difflib's longest matching block, which pairs a phrase with the same phrase said again further on ("Mr. Smith
    ... Mr. Smith" where the first was read "Mister"), this never crosses a repeated stretch to save a few edits."""
    n, m = len(a), len(b)
    band = BAND if free_end else BAND + abs(n - m)
    big = n + m + 1
    # only the band is kept: rows[i][j - i + band] is the cost of aligning a[:i] with b[:j]; each row has one more
    # slot, always `big`, which the neighbours just outside the band read (at band + 1 and, as index -1, at -1)
    width = 2 * band + 1
    rows: list[list[int]] = []
    for i in range(n + 1):
        row = [big] * (width + 1)
        prev = rows[i - 1] if i else row
        for j in range(max(0, i - band), min(m, i + band) + 1):
            k = j - i + band
            if i and j:
                row[k] = min(prev[k] + (a[i - 1] != b[j - 1]), prev[k + 1] + 1, row[k - 1] + 1)
            elif i:
                row[k] = prev[k + 1] + 1
            elif j:
                row[k] = row[k - 1] + 1
            else:
                row[k] = 0
        rows.append(row)

    def cost(i: int, j: int) -> int:
        k = j - i + band
        return rows[i][k] if 0 <= k < width else big

    if free_end:  # the cheapest end: every spoken key aligned with the fewest written ones (or the written ones out)
        ends = [(i, m) for i in range(max(0, m - band), min(n, m + band) + 1)] + [(n, j) for j in range(m + 1)]
        i, j = min(ends, key=lambda e: (cost(*e), e[0], -e[1]))
    else:
        i, j = n, m
    steps = []  # (equal?, di, dj), last first
    while i or j:
        here = cost(i, j)
        if i and j and here == cost(i - 1, j - 1) + (a[i - 1] != b[j - 1]):
            steps.append((a[i - 1] == b[j - 1], 1, 1))
            i, j = i - 1, j - 1
        elif i and here == cost(i - 1, j) + 1:
            steps.append((False, 1, 0))
            i -= 1
        else:
            steps.append((False, 0, 1))
            j -= 1
    ops: list[tuple[str, int, int, int, int]] = []
    for equal, group in itertools.groupby(reversed(steps), key=lambda step: step[0]):
        di = dj = 0
        for _, x, y in group:
            di, dj = di + x, dj + y
        tag = "equal" if equal else "replace" if di and dj else "delete" if di else "insert"
        ops.append((tag, i, i + di, j, j + dj))
        i, j = i + di, j + dj
    return ops


def _opcodes(a: _Keys, b: _Keys) -> Iterator[tuple[str, int, int, int, int]]:
    """Opcodes turning the keys `a` into the keys `b` (written into spoken), in order. Keys that agree where they
    stand are matched as they come; from the first that differ, a least-edit alignment (`_edit_opcodes`) of a window
    of SEARCH spoken and 2 * SEARCH written keys is kept up to its last match, and the walk goes on from there (a
    window with no match doubles until one is found, or to the end)."""
    i0 = j0 = 0
    size = SEARCH
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
        final = len(keys_a) < 2 * size and len(keys_b) < size  # both ends of the text in this window
        ops = _edit_opcodes(keys_a, keys_b, free_end=not final)
        ops = [(tag, p + i0, q + i0, r + j0, t + j0) for tag, p, q, r, t in ops]
        if final:
            yield from ops
            return
        last = max((k for k, op in enumerate(ops) if op[0] == "equal" and (op[2] > i0 or op[4] > j0)), default=None)
        if last is None or ops[last][2] == i0 and ops[last][4] == j0:
            size *= 2
            continue
        yield from ops[: last + 1]
        i0, j0, size = ops[last][2], ops[last][4], SEARCH


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


_PLAIN = re.compile(r"[\"'(\[]*[A-Za-z]+(?:'[A-Za-z]+)?[\"')\].,!?;:]*")
"""A written token that is a plain word: its key is its reading (the normalizer may still rewrite a few, "Mr.")."""


class _ReadKeys(_Keys):
    """The keys of the written tokens as each is read alone (`words_of`: "$4.20," -> four, dollars, and, twenty,
    cents; a dropped symbol -> none), computed as far as asked; `owner[k]` is the token of key k. Read this way, a
    text's written keys are nearly its spoken keys, and the alignment only has to bridge what context changes."""

    def __init__(self, tokens: Iterable[str], words_of: Callable[[str], Sequence[str]] | None):
        self._tokens = enumerate(tokens)
        self._words_of = words_of
        self.keys: list[str] = []
        self.owner: list[int] = []

    def _read(self, token: str) -> list[str]:
        if self._words_of is None or _PLAIN.fullmatch(token) or _PUA.search(token):
            return [_key(token)]
        return [k for k in map(_key, self._words_of(token)) if k]

    def fill(self, n: int) -> bool:
        while len(self.keys) < n:
            index, token = next(self._tokens, (None, ""))
            if index is None:
                return False
            keys = self._read(token)
            self.keys.extend(keys)
            self.owner.extend([index] * len(keys))
        return True


class WrittenText:
    """The runs of a text: `run_of(i)` is the run of spoken word i; `written(run)` its written text. Lined up as far
    as asked, a window at a time: a stream's first sentence does not wait for the rest of a long text.

    original: the text as written (inline overrides already replaced by their placeholder characters);
    spoken: the spoken words in order (read as far as needed); inline: placeholder -> (written text, phonemes) of each
    override; words_of: written token -> its spoken words, read alone (the normalizer's): the written side of the
    alignment is each token's own reading, so that a token rewritten into several words ("$4.20") lines up word for
    word and a repeated sentence cannot pull a match across the text; without it, each token is its own key.

    A run is every written token that a stretch of spoken words comes from: one token ("$4.20"), or the tokens of a
    stretch the normalizer read differently in context than alone (word for word, one run each, where the stretch
    has as many words on both sides), with the written tokens that nothing speaks joined to the run before them (or
    to the first run).
    """

    def __init__(self, original: str, spoken: Iterable[str], inline: Mapping[str, tuple[str, str]] | None = None,
                 words_of: Callable[[str], Sequence[str]] | None = None):
        self._original = original
        self._inline = inline or {}
        self._tokens = [m.span() for m in _TOKEN.finditer(original)]
        self._written = _ReadKeys((original[a:b] for a, b in self._tokens), words_of)
        self._ops = _opcodes(self._written, _Keys(spoken))
        self._spans: list[list[int]] = []  # [start, end) in `original` per run
        self._runs: list[int | None] = []  # per spoken word so far; None: spoken before any run (the first run's)
        self._last = -1  # the last written token in a run so far

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
        """Line up one more opcode's stretch; False once there is nothing left (the last run then takes the written
        tokens after it)."""
        op = next(self._ops, None)
        if op is None:
            if self._spans:
                self._join(len(self._tokens) - 1)
            return False
        _, i1, i2, j1, j2 = op
        owner = self._written.owner
        if i2 == i1:  # spoken, not written: the run before (at the start: the first run)
            self._runs.extend([len(self._spans) - 1 if self._spans else None] * (j2 - j1))
        elif j2 == j1:  # written, not spoken: joins the run before (at the start: the first run, when it comes)
            if self._spans:
                self._join(owner[i2 - 1])
        elif i2 - i1 == j2 - j1:  # equal, or read differently in context word for word ("Mr." said "Mister")
            for i in range(i1, i2):
                self._speak(owner[i], owner[i])
        else:  # read differently in context: the stretch's tokens are one run
            for _ in range(j1, j2):
                self._speak(owner[i1], owner[i2 - 1])
        return True

    def _join(self, last: int) -> None:
        """Written tokens up to `last` join the current run."""
        if last > self._last:
            self._last = last
            self._spans[-1][1] = self._tokens[last][1]

    def _speak(self, first: int, last: int) -> None:
        """One more spoken word, said for the written tokens first..last: the current run's if it shares a token
        with them, else a new run's (the tokens between the two, spoken by neither, join the current one)."""
        if self._spans and first <= self._last:
            self._join(last)
        else:
            if self._spans:
                self._join(first - 1)
            start = self._tokens[first if self._spans else 0][0]
            self._spans.append([start, self._tokens[last][1]])
            self._last = last
        self._runs.append(len(self._spans) - 1)
