"""Rendered chunks -> one `Audio`: samples joined with each chunk's pause, sentence segments and word timings.

A word's time comes from the predicted durations: token i of a chunk ends `cumsum(durations)[i]` frames
(1/40 s each) after the chunk starts; token 0 is the leading pad, so the phonemes start..end of a word span
`ends[start]` to `ends[end]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .audio import Audio, Segment, Word
from .constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from .text import Chunk

FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
"""Seconds per duration frame."""


def chunk_segment(chunk: Chunk, durations: torch.Tensor, start_s: float, samples: int) -> Segment:
    """The Segment of a chunk rendered at `start_s` seconds: its text, span and word times.

    durations: (T + 2,) frames per token, wrapping pads included; samples: the chunk's audio length.
    """
    ends = torch.cumsum(durations, 0).tolist()  # frames after each token (token 0 is the leading pad)
    words = tuple(Word(w.text, start_s + ends[w.start] * FRAME_S, start_s + ends[w.end] * FRAME_S)
                  for w in chunk.written_words or chunk.words)
    return Segment(chunk.written or chunk.text, start_s, start_s + samples / SAMPLE_RATE, words=words)


def assemble(chunks: Sequence[Chunk], durations: Sequence[torch.Tensor], audio: Sequence[np.ndarray],
             trailing_pause: bool = False) -> Audio:
    """Join rendered chunks in order, each followed by its `pause_after` of silence (the last one's only with
    `trailing_pause`, as when more audio follows) -> Audio with one Segment per chunk, clipped to [-1, 1]."""
    pieces, segments, t = [], [], 0
    for k, (chunk, dur, samples) in enumerate(zip(chunks, durations, audio)):
        segments.append(chunk_segment(chunk, dur, t / SAMPLE_RATE, len(samples)))
        pieces.append(samples)
        t += len(samples)
        if k + 1 < len(chunks) or trailing_pause:
            pause = np.zeros(int(round(chunk.pause_after * SAMPLE_RATE)), np.float32)
            pieces.append(pause)
            t += len(pause)
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    # clipped in place: the joined samples are a fresh array of our own, and a second one of a minute's audio costs
    # several times the clip itself (fresh pages, faulted in one by one)
    return Audio(np.clip(samples, -1.0, 1.0, out=samples), SAMPLE_RATE, segments)
