"""Batch plans: which items share a forward pass, and the padded shape each batch runs at. Pure: no weights, no torch.

Two phases, planned separately (see `voicegen.model.network`):

- Token phase: items sorted by token count and cut into batches whose padded size (rows x the bucket of the longest
  item) stays within a token budget. Token buckets keep the number of distinct shapes small (the CPU, which needs
  no fixed shapes, pads a batch only to its longest item: `voicegen.renderer.EXACT_TOKEN_PADDING`).
- Frame phase (~95% of the compute): once durations are known, items are grouped by frame bucket (steps of
  sqrt(2) by default, so at most ~30% padding) and each group cut into batches within a frame budget; at static
  shapes, cut where padded frames plus a per-batch cost are least.

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

FRAME_BUCKETS_PER_OCTAVE = 2
"""Frame buckets per doubling of the length: 2 is a ratio of sqrt(2) between consecutive buckets (at most ~30% of a
bucket is padding), a few distinct shapes (88 CUDA graphs at the largest CUDA budget); 4 would pad about half as
much for twice the shapes (`benchmarks/throughput.py --ab buckets-4` measures it on a GPU)."""

FRAME_BUCKET_MULTIPLE = 16
"""Frame buckets are multiples of this (friendly to vectorized kernels)."""

OVERSIZE_MULTIPLE = 256
"""Past the largest bucket, sizes are rounded up to a multiple of this."""


def frame_buckets(
    largest: int = 8192, smallest: int = 32, per_octave: int = FRAME_BUCKETS_PER_OCTAVE
) -> tuple[int, ...]:
    """Frame-phase pad sizes: smallest x 2^(k / per_octave) for k = 0, 1, ..., each rounded up to a multiple of 16
    (sizes that round alike kept once), until one reaches `largest`. Each octave starts at an exact power of two
    (repeated float products of sqrt(2) came out a hair above them, 64.00000000000001, and rounded up to the next
    multiple of 16: buckets 80, 144, 272, ..., 8208 instead of 64, 128, 256, ..., 8192, steps of up to x1.67 where
    x1.41 was meant)."""
    sizes, k = [], 0
    while True:
        octave, step = divmod(k, per_octave)
        size = smallest * 2**octave * (2 ** (step / per_octave) if step else 1)
        rounded = int(-(-size // FRAME_BUCKET_MULTIPLE) * FRAME_BUCKET_MULTIPLE)
        if not sizes or rounded > sizes[-1]:
            sizes.append(rounded)
        if rounded >= largest:
            return tuple(sizes)
        k += 1


def bucket_for(size: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= size; past the largest, `size` rounded up to a multiple of OVERSIZE_MULTIPLE."""
    for b in buckets:
        if b >= size:
            return b
    return int(-(-size // OVERSIZE_MULTIPLE) * OVERSIZE_MULTIPLE)


def round_up_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (n - 1).bit_length())


def token_batches(token_counts: Sequence[int], max_tokens: int, max_rows: int | None = None) -> list[list[int]]:
    """Indices of items per token-phase batch, shortest items first.

    token_counts: tokens per item (without the wrapping pads). A batch's padded size, rows x the token bucket of
    its longest item (pads included), stays within `max_tokens` unless a single item exceeds it; its rows stay
    within `max_rows` (None: no limit).
    """
    order = sorted(range(len(token_counts)), key=lambda i: token_counts[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        size = bucket_for(token_counts[i] + 2, TOKEN_BUCKETS)  # the longest so far: items are sorted
        if batch and (size * (len(batch) + 1) > max_tokens or (max_rows is not None and len(batch) >= max_rows)):
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


STATIC_BATCH_OVERHEAD = 1024
"""What one more static-shape batch costs beyond its padded frames, in frames: a replay's launch and copies, and a
device that a small batch leaves partly idle. It stops `frame_batches` from trading all padding for many tiny
batches; on the throughput corpus (135 chunks, 16384-frame budget) it planned 7 batches with 26% padding where
grouping by bucket planned 8 with 65%; with the exact power-of-two buckets, on today's 155-chunk corpus, 5 batches
with 28.8% (7 with 25.1% before them; `benchmarks/padding.py`, benchmarks/RESULTS.md, eighth session)."""


def static_rows(bucket: int, max_frames: int, min_rows: int = 1) -> list[int]:
    """The row counts a static batch of `bucket` frames may have: powers of two below what the budget allows for
    that bucket, then that maximum (never fewer than `min_rows`), ascending. Warm-up captures exactly these."""
    per_batch = max(1, max_frames // bucket)
    rows, out = 1, []
    while rows < per_batch:
        out.append(rows)
        rows *= 2
    out.append(per_batch)
    return sorted({max(min_rows, r) for r in out})


def frame_batches(
    frame_counts: Sequence[int], max_frames: int, buckets: Sequence[int], static: bool = False, min_rows: int = 1
) -> list[FrameBatch]:
    """Frame-phase batches, shortest first.

    static=False: items grouped by frame bucket (shortest first), each group cut within `max_frames`; a batch runs
    at its exact size (its items, padded to its longest item).
    static=True: every batch runs at a shape from a small set, frames a bucket and rows from `static_rows` (so only
    a few shapes ever occur: CUDA graphs replay one per shape). Rows a batch's items do not fill are computed all
    the same, so the plan fills them with the next shorter items, which then ride at the longer bucket: over the
    items sorted longest first, a dynamic program picks the cuts that minimize the padded frames plus
    STATIC_BATCH_OVERHEAD per batch. min_rows=2 keeps a compiled frame phase to one graph: compilers specialize a
    size of 1, so a one-row batch would compile again.
    """
    if not static:
        order = sorted(range(len(frame_counts)), key=lambda i: frame_counts[i])
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(bucket_for(frame_counts[i], buckets), []).append(i)
        out = []
        for bucket, group in groups.items():
            per_batch = max(1, max_frames // bucket)
            for lo in range(0, len(group), per_batch):
                items = tuple(group[lo : lo + per_batch])
                out.append(FrameBatch(items, len(items), max(frame_counts[i] for i in items)))
        return out
    order = sorted(range(len(frame_counts)), key=lambda i: -frame_counts[i])
    n = len(order)
    best = [0.0] * (n + 1)  # best[i]: least cost of the items order[i:]
    choice: list[tuple[int, int, int]] = [(0, 0, 0)] * n  # (items taken, rows, frames) of the first batch
    for i in range(n - 1, -1, -1):
        bucket = bucket_for(frame_counts[order[i]], buckets)
        best[i] = float("inf")
        for rows in static_rows(bucket, max_frames, min_rows):
            take = min(rows, n - i)
            cost = rows * bucket + STATIC_BATCH_OVERHEAD + best[i + take]
            if cost < best[i]:
                best[i], choice[i] = cost, (take, rows, bucket)
            if i + take == n:  # more rows would only be empty
                break
    out, i = [], 0
    while i < n:
        take, rows, bucket = choice[i]
        out.append(FrameBatch(tuple(reversed(order[i : i + take])), rows, bucket))
        i += take
    return out[::-1]


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
