"""A held-out set of real English sentences that nobody on this project wrote, for reporting intelligibility.

Our own sentence sets (`benchmarks/data/sentences_*.txt`) were written by us and the frontend was tuned while we
looked at their transcripts, so a figure on them flatters us. The held-out sentences come from a text that is on
every machine that runs voicegen and that none of us wrote: the documentation of the Python language that CPython
ships as `pydoc_data.topics` (the text `help("if")` prints; PSF licence; read where it is installed, never copied
into this repository).

The rule that picks them, applied to the topics in sorted order:

- a paragraph is a run of unindented, non-empty lines (indented lines are code examples and tables), joined with
  spaces, except after a line that ends in a word's hyphen ("decimal-" and "point": "decimal-point");
- a paragraph is cut into sentences after ".", "?" or "!" followed by whitespace and a capital letter;
- a sentence is kept if it has 6 to 30 words, starts with a capital letter, ends with ".", "?" or "!", uses only
  letters, digits, spaces and , . ; : ' - ? ! %, and has no identifier-like word (a capital inside a word, a dot
  between word characters, a run of capitals such as an acronym) and no "e.g.", "i.e." or "etc": Whisper's
  spelling of those is a matter of convention, not of what it heard;
- duplicates are dropped.

Each kept sentence falls, by the parity of the first byte of its SHA-256, into the `dev` split (to look at while
working on the frontend) or the `test` split (to report, and not to look at while tuning); within a split,
sentences are ordered by that digest, so the first N are a fixed pseudo-random sample. The text changes between
Python releases: `describe()` records the Python version and a digest of the sentences, and a figure is only
comparable to one with the same digest.
"""

from __future__ import annotations

import hashlib
import re
import sys

SPLITS = ("dev", "test")
MIN_WORDS, MAX_WORDS = 6, 30
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_ALLOWED = re.compile(r"[A-Za-z0-9 ,.;:'\-?!%]+")
_HYPHEN_BREAK = re.compile(r"[A-Za-z]-$")
_IDENTIFIER_LIKE = re.compile(r"[a-z][A-Z]|\w\.\w|\b(?:e\.g|i\.e|etc)\b|\b[A-Z]{2,}\b")


def _digest(sentence: str) -> bytes:
    return hashlib.sha256(sentence.encode("utf-8")).digest()


def _paragraphs(text: str) -> list[str]:
    """Runs of unindented non-empty lines, each joined with single spaces (a line that ends in a hyphenated word's
    hyphen, "decimal-" before "point", joined without one)."""
    paragraphs, current = [], ""
    for line in text.splitlines():
        if not line.strip() or line[:1].isspace():
            if current:
                paragraphs.append(current)
                current = ""
            continue
        joiner = "" if not current or _HYPHEN_BREAK.search(current) else " "
        current += joiner + line.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def keep(sentence: str) -> bool:
    """Whether `sentence` passes the rule in the module docstring."""
    words = sentence.split()
    return (MIN_WORDS <= len(words) <= MAX_WORDS and sentence[0].isupper() and sentence[-1] in ".?!"
            and _ALLOWED.fullmatch(sentence) is not None and _IDENTIFIER_LIKE.search(sentence) is None)


def sentences_of(text: str) -> list[str]:
    """The sentences of `text` that the rule keeps, in order of appearance, without duplicates."""
    seen, out = set(), []
    for paragraph in _paragraphs(text):
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            if sentence and keep(sentence) and sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
    return out


def source_text() -> str:
    """The Python documentation's topics, in sorted order of their names. RuntimeError if this Python lacks them."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise RuntimeError("this Python has no pydoc_data.topics (some distributions split it off); the held-out "
                           "set needs a full CPython installation") from e
    return "\n".join(topics[name] for name in sorted(topics))


def held_out(split: str = "test", limit: int | None = None, text: str | None = None) -> list[str]:
    """The first `limit` sentences (all if None) of `split` ("dev" or "test"), in digest order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    sentences = sentences_of(source_text() if text is None else text)
    chosen = sorted((s for s in sentences if _digest(s)[0] % 2 == SPLITS.index(split)), key=_digest)
    return chosen[:limit]


def describe(sentences: list[str]) -> dict:
    """Where a list of held-out sentences came from, for a benchmark's JSON."""
    joined = "\n".join(sentences).encode("utf-8")
    return {"source": "pydoc_data.topics", "python": sys.version.split()[0], "sentences": len(sentences),
            "sha256": hashlib.sha256(joined).hexdigest()}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print the held-out sentences of a split, one per line.")
    parser.add_argument("split", nargs="?", default="dev", choices=SPLITS)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    for line in held_out(args.split, args.limit):
        print(line)
