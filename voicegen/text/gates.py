"""Cheap necessary conditions for regular expressions: skip a rewrite rule whose pattern cannot match a text.

The normalizer applies about ninety rewrite rules to every sentence, and on plain prose almost none of them match;
each `Pattern.sub` still scans the sentence (about half of the frontend's time on the one-minute script). Most
patterns need a character that plain prose lacks: a digit, "%", "/", "@", a currency sign. `requirements(pattern)`
finds such characters from the pattern's parse tree, and `apply_rules` asks of a text only a set intersection per
rule.

The analysis is conservative: a requirement is only ever a character class that every match must contain (a
character the pattern consumes, or one a positive lookaround needs, outside optional or alternative parts; for an
alternation, the union over its branches). Anything it does not understand (case-insensitive patterns, negated
classes, wide ranges, back-references, a parse tree of an unknown shape) gives no requirement, and the rule always
runs. It reads the parse tree of Python's own `re` module (`re._parser`, `sre_parse` before Python 3.11), a private
format: if that module changes shape, the analysis fails, every rule runs, and only speed is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

MAX_CHARS = 256
"""A class of more characters than this (a wide range) is no useful requirement."""

_DIGITS = {_c.CATEGORY_DIGIT, getattr(_c, "CATEGORY_UNI_DIGIT", _c.CATEGORY_DIGIT)}
_DIGIT = re.compile(r"\d")  # what a digit requirement asks of a text (any Unicode decimal digit)


class Requirement(NamedTuple):
    """A text can match only if it holds one of `chars`, or (`digit`) a Unicode decimal digit (what `\\d` matches)."""

    chars: frozenset[str]
    digit: bool = False

    def __or__(self, other: Requirement) -> Requirement:  # type: ignore[override]
        return Requirement(self.chars | other.chars, self.digit or other.digit)


@lru_cache(maxsize=None)
def requirements(pattern: re.Pattern[str]) -> tuple[Requirement, ...]:
    """Requirements that every match of `pattern` meets (all of them at once); () when none is found. Cached per
    compiled pattern (the normalizer's rules are module constants)."""
    if pattern.flags & re.IGNORECASE or not isinstance(pattern.pattern, str):
        return ()
    try:
        found = _sequence(_p.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - an unknown tree shape: no requirement, the rule runs
        return ()
    return tuple(dict.fromkeys(found))  # in order, without repeats


def _sequence(items) -> list[Requirement]:
    """Requirements of a sequence of parse items, each of which must match in turn."""
    out: list[Requirement] = []
    for op, av in items:
        if op in (_c.LITERAL, _c.IN):
            one = _one_char(op, av)
            if one is not None:
                out.append(one)
        elif op is _c.SUBPATTERN:
            add_flags = av[1] if len(av) == 4 else 0
            if not add_flags & re.IGNORECASE:
                out += _sequence(av[-1])
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) or op is getattr(_c, "POSSESSIVE_REPEAT", None):
            low, _, item = av
            if low >= 1:
                out += _sequence(item)
        elif op is _c.ASSERT:  # a positive lookahead or lookbehind: what it looks at must be there
            out += _sequence(av[1])
        elif op is _c.BRANCH:
            branches = [_sequence(branch) for branch in av[1]]
            if branches and all(branches):
                union = branches[0][0]
                for branch in branches[1:]:
                    union = union | branch[0]
                out.append(union)
        # anything else (anchors, negative lookarounds, any-character, back-references, atomic groups,
        # conditionals) requires nothing that this analysis can name
    return out


def _one_char(op, av) -> Requirement | None:
    """The requirement of one consumed character: a literal, or a class without negation or wide ranges."""
    if op is _c.LITERAL:
        return Requirement(frozenset(chr(av)))
    chars: set[str] = set()
    digit = False
    for kind, value in av:
        if kind is _c.LITERAL:
            chars.add(chr(value))
        elif kind is _c.RANGE and value[1] - value[0] < MAX_CHARS:
            chars.update(chr(c) for c in range(value[0], value[1] + 1))
        elif kind is _c.CATEGORY and value in _DIGITS:
            digit = True
        else:  # a negation, another category (\w, \s, \D, ...) or a wide range: nearly every text has one
            return None
    return Requirement(frozenset(chars), digit)


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def apply_rules(rules: Sequence[Rule], text: str) -> str:
    """`pattern.sub(fn, text)` for each rule in turn, skipping the rules whose requirements rule a match out: the
    same text out as applying every rule."""
    chars, has_digit = set(text), _DIGIT.search(text) is not None
    for pattern, fn in rules:
        for need in requirements(pattern):
            if not (need.digit and has_digit) and need.chars.isdisjoint(chars):
                break  # a character every match needs is not in the text
        else:
            out = pattern.sub(fn, text)
            if out != text:
                text = out
                chars, has_digit = set(text), _DIGIT.search(text) is not None
    return text
