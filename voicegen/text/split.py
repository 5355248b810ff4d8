"""Split normalized text into sentences, each tagged with the pause that follows it.

The input is :func:`voicegen.text.normalize.normalize` output, so every remaining ``.`` ends a sentence
(abbreviations, initials and decimals were already spelled out). A newline ends a sentence too (list items,
headings, verse); a blank line ends a paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SENTENCE_PAUSE = {".": 0.4, "!": 0.4, "?": 0.45, "…": 0.5}
"""Seconds of silence after a sentence, by its final mark."""
LINE_PAUSE = 0.35
"""After a line that ends without a sentence mark (a list item, a heading)."""
PARAGRAPH_PAUSE = 0.8
"""After the last sentence of a paragraph (a blank line follows)."""
CLAUSE_PAUSE = {",": 0.15, ";": 0.25, ":": 0.25, "—": 0.25, "…": 0.3}
"""After a chunk cut mid-sentence at this punctuation mark (sentence too long for one item)."""
WORD_PAUSE = 0.05
"""After a chunk cut mid-sentence between two words (no punctuation nearby)."""

_SENTENCE_END = re.compile(r'(?<=[.!?…])[”")]*(?=\s*$|\s+[^a-z])')
"""End of a sentence: a mark (and closing quotes) before a space and a word that is not lower-case."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of normalized text and the seconds of silence after it."""

    text: str
    pause_after: float


def _pause(sentence: str) -> float:
    end = sentence.rstrip('”")')[-1:]
    return SENTENCE_PAUSE.get(end, LINE_PAUSE)


def split_sentences(text: str) -> list[Sentence]:
    """Normalized text -> sentences in order (empty ones dropped)."""
    out: list[Sentence] = []
    for paragraph in re.split(r"\n\s*\n", text):
        sentences: list[str] = []
        for line in paragraph.split("\n"):
            start = 0
            for m in _SENTENCE_END.finditer(line):
                sentences.append(line[start:m.end()])
                start = m.end()
            sentences.append(line[start:])
        sentences = [s.strip() for s in sentences if s.strip()]
        for k, s in enumerate(sentences):
            pause = PARAGRAPH_PAUSE if k == len(sentences) - 1 else _pause(s)
            out.append(Sentence(s, max(pause, _pause(s))))
    if out:  # the text's last sentence ends no paragraph break of its own
        out[-1] = Sentence(out[-1].text, _pause(out[-1].text))
    return out
