"""Batch plans: which items share a forward pass, and the padded shape each batch runs at. Pure: no weights, no torch.

Two phases, planned separately (see `voicegen.model.network`):

- Token phase: items sorted by token count and cut into batches whose padded size (rows x the bucket of the longest
  item) stays within a token budget. Token buckets keep the number of distinct shapes small.
- Frame phase (~95% of the compute): once durations are known, items are grouped by frame bucket (steps of
  sqrt(2), so at most ~30% padding) and each group cut into batches within a frame budget.

A batch then runs either at its exact size (rows = items, frames = its longest item: eager, or compiled with
symbolic sizes) or at a static bucket shape (frames = the bucket, rows = a power of two: what CUDA graphs and
static compilation need, since every shape is a graph of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .constants import MAX_PHONEMES

TOKEN_BUCKETS = (32, 64, 128, 256, MAX_PHONEMES + 2)
"""Padded token lengths of the token phase (the last holds the longest item plus its two wrapping pads)."""

FRAME_BUCKET_STEP = 2**0.5
"""Ratio of consecutive frame buckets: at most ~30% padding, a few distinct shapes."""

FRAME_BUCKET_MULTIPLE = 16
"""Frame buckets are multiples of this (friendly to vectorized kernels)."""

OVERSIZE_MULTIPLE = 256
"""Past the largest bucket, sizes are rounded up to a multiple of this."""


def frame_buckets(largest: int = 8192, smallest: int = 32) -> tuple[int, ...]:
    """Frame-phase pad sizes: `smallest`, then x sqrt(2) steps rounded up to multiples of 16, up to `largest`."""
    sizes, size = [], float(smallest)
    while True:
        rounded = int(-(-size // FRAME_BUCKET_MULTIPLE) * FRAME_BUCKET_MULTIPLE)
        sizes.append(rounded)
        if rounded >= largest:
            return tuple(sizes)
        size *= FRAME_BUCKET_STEP


def bucket_for(size: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= size; past the largest, `size` rounded up to a multiple of OVERSIZE_MULTIPLE."""
    for b in buckets:
        if b >= size:
            return b
    return int(-(-size // OVERSIZE_MULTIPLE) * OVERSIZE_MULTIPLE)


def round_up_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (n - 1).bit_length())


def token_batches(token_counts: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices of items per token-phase batch, shortest items first.

    token_counts: tokens per item (without the wrapping pads). A batch's padded size, rows x the token bucket of
    its longest item (pads included), stays within `max_tokens` unless a single item exceeds it.
    """
    order = sorted(range(len(token_counts)), key=lambda i: token_counts[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        size = bucket_for(token_counts[i] + 2, TOKEN_BUCKETS)  # the longest so far: items are sorted
        if batch and size * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


@dataclass(frozen=True)
class FrameBatch:
    """One frame-phase batch: item indices, and the (rows, frames) shape it runs at (rows >= len(items))."""

    items: tuple[int, ...]
    rows: int
    frames: int

    @property
    def padded_frames(self) -> int:
        return self.rows * self.frames


def frame_batches(
    frame_counts: Sequence[int], max_frames: int, buckets: Sequence[int], static: bool = False, min_rows: int = 1
) -> list[FrameBatch]:
    """Frame-phase batches: items grouped by frame bucket (shortest first), each group cut within `max_frames`.

    static=False: a batch runs at its exact size (its items, padded to its longest item).
    static=True: at the bucket's frame count, with rows rounded up to a power of two (at most what the budget
    allows for that bucket, but never fewer than `min_rows`), so that only a few shapes ever occur. min_rows=2 keeps
    a compiled frame phase to one graph: compilers specialize a size of 1, so a one-row batch would compile again.
    """
    order = sorted(range(len(frame_counts)), key=lambda i: frame_counts[i])
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(bucket_for(frame_counts[i], buckets), []).append(i)
    out = []
    for bucket, group in groups.items():
        per_batch = max(1, max_frames // bucket)
        for lo in range(0, len(group), per_batch):
            items = tuple(group[lo : lo + per_batch])
            if static:
                out.append(FrameBatch(items, max(min_rows, min(per_batch, round_up_pow2(len(items)))), bucket))
            else:
                out.append(FrameBatch(items, len(items), max(frame_counts[i] for i in items)))
    return out


def text_windows(lengths: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """(lo, hi) index ranges over consecutive pieces of text, in order, each closed once its characters (the sum of
    `lengths`) reach `limit`: how long texts and scripts are rendered a window at a time."""
    out, lo, size = [], 0, 0
    for i, n in enumerate(lengths):
        size += n
        if size >= limit:
            out.append((lo, i + 1))
            lo, size = i + 1, 0
    if lo < len(lengths):
        out.append((lo, len(lengths)))
    return out
