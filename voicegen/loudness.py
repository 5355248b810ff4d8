"""Loudness per ITU-R BS.1770-4 (K-weighting, gated integrated loudness, true peak) and normalization.

Everything works on blocks so an hour-long episode is measured and normalized in bounded memory:
`LoudnessMeter` accumulates 100 ms sub-block energies as audio streams in, `PeakBounds` an upper bound of the
true peak per 32 frames (so `PeakMap` later looks only where the limiter could act), and `limited_blocks` yields
the gained and true-peak-limited signal block by block from any array-like source (a numpy array or memmap).
Arrays are (N,) mono or (N, C) with C channels of weight 1 (L/R; surround weights are not needed here).

Two cores: large independent pieces of work (the channels of the K-filter and of the limiter's corrections, pairs
of output blocks; a writer's metering, see `voicegen.podcast.mix`) run on one helper thread (`worker`) while the
calling thread does the rest (`in_parallel`). The helper runs numpy and scipy only (their loops release the GIL),
never torch: a thread that runs torch operations starts an OpenMP pool of its own, which slows the renderer.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import lru_cache

import numpy as np

from . import dsp

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S = 0.4
"""Gating block length; blocks overlap by 75 %, so a new block starts every 100 ms (one sub-block)."""
SUB_BLOCKS_PER_BLOCK = 4
TRUE_PEAK_OVERSAMPLING = 4
LIMITER_MARGIN_DB = 0.1
"""The limiter aims this far below the requested true-peak ceiling."""
LIMITER_HALF_WINDOW_S = 0.005
"""Look-ahead/hold of the limiter; gain changes ramp over twice this on each side of a peak."""
BLOCK_FRAMES = 1 << 17
"""Frames per block when streaming a signal through the meter or limiter (~5.5 s at 24 kHz)."""
_RING_INPUT = 1e-30
"""Input while the K-filter rings out after a signal, instead of exact zeros: it keeps the filter state out of the
subnormal range (arithmetic there is ~100x slower on x86: it made ring-outs 5x slower), and adds below 1e-50 to
any energy."""


PARALLEL_MIN_FRAMES = 1 << 15
"""Smallest piece of work (in frames) handed to the helper thread: below it the hand-off (~0.1 ms on a busy 2-core
VM) costs about what it saves."""

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()
_on_worker = threading.local()


def _mark_worker() -> None:
    _on_worker.active = True


def _forget_worker() -> None:
    """In a forked child: the parent's helper thread does not exist there; a new one starts on first use."""
    global _worker, _worker_lock
    _worker, _worker_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


def worker() -> ThreadPoolExecutor:
    """The mixer's one helper thread (started on first use, shared by every meter and writer of the process). Its
    tasks run in the order submitted and never wait for other tasks; numpy and scipy only, never torch."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(1, thread_name_prefix="voicegen-mixer", initializer=_mark_worker)
        return _worker


def on_worker() -> bool:
    """True on the helper thread itself (whose tasks must not wait for other tasks: they would wait for ever)."""
    return getattr(_on_worker, "active", False)


def in_parallel(here: Callable[[], object], there: Callable[[], object], frames: int = PARALLEL_MIN_FRAMES):
    """(here(), there()): `there` on the helper thread while `here` runs on this one, when the work is worth it
    (`frames` >= PARALLEL_MIN_FRAMES) and this is not the helper thread; else both here, in turn."""
    if frames < PARALLEL_MIN_FRAMES or on_worker():
        return here(), there()
    future: Future = worker().submit(there)
    try:
        first = here()
    except BaseException:
        wait([future])  # `there` may be using the same arrays: let it finish before the caller sees the error
        raise
    return first, future.result()


def channel_map(fn: Callable[[int], object], channels: int, frames: int) -> list:
    """[fn(0), ..., fn(channels - 1)], the second half of the channels computed on the helper thread (`in_parallel`,
    `frames` per channel); in channel order."""
    if channels < 2:
        return [fn(c) for c in range(channels)]
    split = (channels + 1) // 2
    here, there = in_parallel(lambda: [fn(c) for c in range(split)],
                              lambda: [fn(c) for c in range(split, channels)], frames)
    return here + there


def _as_2d(x):
    """(N,) -> (N, 1); (N, C) arrays and array-likes with ndim == 2 (read lazily by slicing) pass through."""
    if getattr(x, "ndim", None) == 2:
        return x
    x = np.asarray(x)
    return x[:, None] if x.ndim == 1 else x


def k_weighting_filters(sr: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((b, a) of the high-shelf "stage 1", (b, a) of the high-pass "RLB" stage 2) for sample rate sr.

    Designed from the analog prototypes with the bilinear transform (pre-warped at each corner
    frequency); at 48 kHz this reproduces the coefficient table in BS.1770-4 (Tables 1 and 2).
    """
    # Stage 1: shelving filter modelling the acoustic effect of the head.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    b1 = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    a1 = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    # Stage 2: revised low-frequency B-curve (a second-order high-pass).
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1.0 + k / q + k * k
    b2 = np.array([1.0, -2.0, 1.0])
    a2 = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return (b1, a1), (b2, a2)


@lru_cache(maxsize=8)
def k_weighting_sos(sr: int) -> np.ndarray:
    """The K-weighting cascade as second-order sections for scipy.signal.sosfilt: (2, 6) [b0 b1 b2 a0 a1 a2] rows."""
    (b1, a1), (b2, a2) = k_weighting_filters(sr)
    return np.array([np.concatenate([b1, a1]), np.concatenate([b2, a2])])


@lru_cache(maxsize=8)
def k_weighting_settle(sr: int, tolerance: float = 1e-6) -> int:
    """Samples after which the cascade's impulse response stays below `tolerance` (its output forgets older
    input): ~1100 at 24 kHz for 1e-6."""
    from scipy.signal import sosfilt

    h = np.abs(sosfilt(k_weighting_sos(sr), np.eye(1, 2 * sr, 0)[0]))  # both poles decay within ~0.15 s
    above = np.flatnonzero(h >= tolerance)
    return int(above[-1]) + 1 if len(above) else 1


@lru_cache(maxsize=8)
def k_weighting_ba(sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The K-weighting cascade as one 4th-order filter for scipy.signal.lfilter: (b (5,), a (5,)).

    The product of the two biquads; in float64 its output agrees with the cascade to ~1e-12 of the signal (energy
    to ~1e-12 relative) and costs a fifth less than `sosfilt` of the two sections."""
    (b1, a1), (b2, a2) = k_weighting_filters(sr)
    return np.convolve(b1, b2), np.convolve(a1, a2)


K_ORDER = 4
"""State values per channel of the K-weighting filter (`k_filter`)."""


def k_filter(x: np.ndarray, sr: int, state: np.ndarray | None = None, axis: int = -1):
    """K-weight x along `axis` in float64, continuing from `state` (zeros: from rest): (y like x, final state).

    state: x's shape with `axis` replaced by K_ORDER (the filter's own, linear in the input: states of two signals
    add up to the state of their sum). scipy's lfilter walks any axis in place, so (n, C) frames need no transpose.
    x is converted to float64 first: given float32 samples and an initial state, lfilter (scipy 1.17) took twice
    as long as the conversion and a float64 filter together (benchmarks/RESULTS.md, twelfth session)."""
    from scipy.signal import lfilter

    b, a = k_weighting_ba(sr)
    x = np.asarray(x, dtype=np.float64)
    if state is None:
        shape = list(np.shape(x))
        shape[axis] = K_ORDER
        state = np.zeros(shape)
    return lfilter(b, a, x, axis=axis, zi=state)


class _KWeighting:
    """Streaming K-weighting (`k_filter`: the two biquads as one IIR filter, float64, compiled), carrying its state
    (C, K_ORDER) from one call to the next."""

    def __init__(self, sr: int, channels: int):
        self.sr = sr
        self.state = np.zeros((channels, K_ORDER))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (n, C) -> (n, C) K-weighted (float64), continuing from the previous call."""
        y, state = k_filter(np.asarray(x), self.sr, np.ascontiguousarray(self.state.T), axis=0)
        self.state = state.T
        return y

    def channels_first(self, x: np.ndarray) -> np.ndarray:
        """x: (C, n) -> (C, n) K-weighted (float64), continuing from the previous call."""
        y, self.state = k_filter(np.asarray(x), self.sr, self.state)
        return y


def _squares(x: np.ndarray) -> np.ndarray:
    """x * x, in place (x is a temporary of the caller's)."""
    return np.multiply(x, x, out=x)


def _sums_of_squares(z: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """z: (n,) or (n, C); starts: (k,) increasing, starts[0] == 0 -> sum of z^2 over each part [starts[i],
    starts[i+1]) (the last to n): (k,) or (k, C), float64. Runs of parts of equal length (all full sub-blocks when
    the rate is a multiple of 10) are summed as rows of one reshaped view, the others one dot product each."""
    n = len(z)
    edges = np.append(starts, n)
    lengths = np.diff(edges)
    out = np.empty((len(starts),) + z.shape[1:])
    runs = np.flatnonzero(np.diff(lengths, prepend=-1, append=-1))  # first part of each run of equal lengths
    for k, j in zip(runs[:-1], runs[1:]):
        w = int(lengths[k])
        if j - k == 1 or w == 0:
            part = z[edges[k] : edges[j]]
            out[k] = np.einsum("i...,i...->...", part, part) if z.ndim > 1 else np.dot(part, part)
        else:
            rows = z[edges[k] : edges[j]].reshape((j - k, w) + z.shape[1:])
            out[k:j] = np.einsum("kw...,kw...->k...", rows, rows)
    return out


def _sub_block_bounds(sr: int, count: int) -> np.ndarray:
    """First frame of sub-blocks 0..count (100 ms steps, rounded for rates not divisible by 10): (count + 1,)."""
    return (np.arange(count + 1, dtype=np.int64) * sr + 5) // 10


def _gated_loudness(sub: np.ndarray, sr: int) -> float:
    """Gated integrated loudness (LUFS, -inf if no block passes the absolute gate) from channel-summed energies of
    complete 100 ms sub-blocks, (J,); the 400 ms gating blocks are sums of four consecutive sub-blocks."""
    z = _block_means(sub, sr)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10.0 * np.log10(z)
    z = z[loud > ABSOLUTE_GATE_LUFS]
    if len(z) == 0:
        return -math.inf
    relative_gate = -0.691 + 10.0 * math.log10(z.mean()) + RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        z = z[-0.691 + 10.0 * np.log10(z) > relative_gate]
    return -0.691 + 10.0 * math.log10(z.mean())


def _block_means(sub: np.ndarray, sr: int) -> np.ndarray:
    """Channel-summed sub-block energies (J,) -> mean square per 400 ms gating block, (J - 3,) (or (0,))."""
    if len(sub) < SUB_BLOCKS_PER_BLOCK:
        return np.zeros(0)
    sums = np.convolve(sub, np.ones(SUB_BLOCKS_PER_BLOCK), mode="valid")
    bounds = _sub_block_bounds(sr, len(sub))
    return sums / (bounds[SUB_BLOCKS_PER_BLOCK:] - bounds[: len(sums)])


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) of a signal fed in pieces of any length.

    Keeps one energy per channel per 100 ms sub-block (36 000 numbers for an hour), so memory does not
    grow with the audio; 400 ms gating blocks with 75 % overlap are sums of four consecutive sub-blocks.
    """

    def __init__(self, sr: int, channels: int = 1):
        self.sr, self.channels = sr, channels
        self._filter = _KWeighting(sr, channels)
        self._sub_energy: list[np.ndarray] = []  # (k, C) sums of squares of complete sub-blocks, in order
        self._sub_count = 0
        self._partial = np.zeros(channels)
        self._frames = 0  # frames seen so far

    def add(self, x: np.ndarray) -> None:
        """Append samples: (n,) for a mono meter or (n, C)."""
        x = _as_2d(np.asarray(x))
        if x.shape[1] != self.channels:
            raise ValueError(f"meter has {self.channels} channel(s), got {x.shape[1]}")
        for start in range(0, len(x), BLOCK_FRAMES):
            piece = x[start : start + BLOCK_FRAMES]
            if piece.any():
                self._add_filtered(self._filter(piece))
            else:
                self._add_silence(len(piece))

    def add_panned(self, mono: np.ndarray, gains) -> None:
        """Append `mono` (n,) placed on the channels with constant `gains` (C,): the same as add(mono[:, None] *
        gains), filtering one channel instead of C. K-weighting is linear, so channel c's output is gains[c] times
        the mono signal's output z plus the ring-out r_c of channel c's own filter state: its squares are
        gains[c]^2 z^2 (summed per sub-block once, for all channels) plus r_c (r_c + 2 gains[c] z) where r_c is
        non-zero (the filter's settling time)."""
        mono = np.asarray(mono).reshape(-1)
        gains = np.asarray(gains, dtype=np.float64).reshape(-1, 1)  # (C, 1)
        if len(gains) != self.channels:
            raise ValueError(f"meter has {self.channels} channel(s), got {len(gains)} gains")
        settle = k_weighting_settle(self.sr, 1e-13)
        for start in range(0, len(mono), BLOCK_FRAMES):
            piece = mono[start : start + BLOCK_FRAMES]
            z, mono_state = k_filter(piece, self.sr)  # the mono signal from rest, float64
            sums = self._split_energy(z)[:, None] * (gains * gains).T  # (k, C)
            state = self._filter.state  # (C, K_ORDER)
            ring = min(len(piece), settle)
            if state.any():  # the previous input rings out under the new one
                free, rung = k_filter(np.full((self.channels, ring), _RING_INPUT), self.sr, state)  # (C, ring)
                extra = self._split_sums(free * (free + 2.0 * gains * z[:ring])).T  # (k', C), k' <= k
                sums[: len(extra)] += extra
                state = rung if ring == len(piece) else np.zeros_like(state)  # else: below 1e-13, dropped
            else:
                state = np.zeros_like(state)
            self._filter.state = state + gains * mono_state
            self._add_sums(sums, len(piece))

    def add_silence(self, n: int) -> None:
        """Append n frames of digital silence: the same as add(np.zeros((n, C))), without the zeros."""
        if n > 0:
            self._add_silence(n)

    def _add_silence(self, n: int) -> None:
        """n frames of digital silence: the filter rings out its state (until its response is below 1e-13, as
        `k_weighting_settle` measures), then the rest adds nothing but time."""
        ring = min(n, k_weighting_settle(self.sr, 1e-13))
        if ring and self._filter.state.any():
            self._add_filtered(self._filter.channels_first(np.full((self.channels, ring), _RING_INPUT)).T)
            if ring < n:
                self._filter.state[...] = 0.0  # rung out: what is left is below 1e-13 of the signal
            n -= ring
        end = self._frames + n
        last = (10 * end + 4) // self.sr
        if last > self._sub_count:  # sub-blocks completed by the silence: only the partial energy before it
            rows = np.zeros((last - self._sub_count, self.channels))
            rows[0] = self._partial
            self._sub_energy.append(rows)
            self._partial = np.zeros(self.channels)
            self._sub_count = last
        self._frames = end

    def _add_filtered(self, z: np.ndarray) -> None:
        """z: (n, C) K-weighted samples, their squares summed into the 100 ms sub-blocks."""
        if len(z):
            self._add_sums(self._split_energy(z), len(z))

    def _part_starts(self, n: int) -> np.ndarray:
        """The first of the next n frames (0) and every sub-block start among them, relative to the current
        position: (k,), k >= 1; the first part finishes (or continues) the sub-block in progress."""
        end = self._frames + n
        last = (10 * end + 4) // self.sr  # sub-blocks 0..last start at or before `end`
        j = np.arange(self._sub_count + 1, last + 1, dtype=np.int64)  # sub-blocks starting after the current one
        stops = (j * self.sr + 5) // 10 - self._frames  # their first frames (`_sub_block_bounds`), from here
        return np.concatenate([[0], stops[stops < n]])

    def _split_sums(self, sq: np.ndarray) -> np.ndarray:
        """sq: (..., n) values for the frames from the current position on -> their sums over the parts of
        successive sub-blocks, (..., k)."""
        return np.add.reduceat(sq, self._part_starts(sq.shape[-1]), axis=-1)

    def _split_energy(self, z: np.ndarray) -> np.ndarray:
        """z: (n,) or (n, C) samples from the current position on -> the sums of their squares over the parts of
        successive sub-blocks, (k,) or (k, C), without an array of squares (`_sums_of_squares`)."""
        return _sums_of_squares(z, self._part_starts(len(z)))

    def _add_sums(self, sums: np.ndarray, n: int) -> None:
        """Book `sums` (k, C), per part of `_part_starts(n)`, for the next n frames (k >= 1), into the sub-blocks."""
        end = self._frames + n
        last = (10 * end + 4) // self.sr
        done = last - self._sub_count  # sub-blocks completed by these frames
        if done <= 0:
            self._partial = self._partial + sums[0]
        else:
            sums = sums.copy()
            sums[0] += self._partial
            self._sub_energy.append(sums[:done])
            self._partial = sums[done] if len(sums) > done else np.zeros(self.channels)
            self._sub_count = last
        self._frames = end

    def sub_block_energies(self) -> np.ndarray:
        """Sum of squares of the K-weighted signal per complete 100 ms sub-block and channel: (J, C)."""
        if not self._sub_energy:
            return np.zeros((0, self.channels))
        if len(self._sub_energy) > 1:
            self._sub_energy = [np.concatenate(self._sub_energy)]
        return self._sub_energy[0]

    def block_energies(self) -> np.ndarray:
        """Mean square per 400 ms gating block, summed over channels (weights 1): shape (blocks,)."""
        return _block_means(self.sub_block_energies().sum(axis=1), self.sr)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS, or -inf when no block is above the absolute gate."""
        return _gated_loudness(self.sub_block_energies().sum(axis=1), self.sr)


def integrated_loudness(x: np.ndarray, sr: int) -> float:
    """Integrated loudness of x ((N,) or (N, C)) in LUFS; -inf for silence or audio shorter than 400 ms."""
    x = _as_2d(x)
    meter = LoudnessMeter(sr, x.shape[1])
    meter.add(x)
    return meter.integrated()


def _channel_peak(x: np.ndarray) -> np.ndarray:
    """max over channels of |x|: (N, C) -> (N,) float64 (elementwise: numpy's reductions over tiny axes are slow)."""
    m = np.abs(x[:, 0]).astype(np.float64)
    for c in range(1, x.shape[1]):
        np.maximum(m, np.abs(x[:, c]), out=m)
    return m


@lru_cache(maxsize=1)
def _inter_sample_kernel() -> tuple[int, np.ndarray, float]:
    """The 4x oversampler's inter-sample phases (`dsp.interpolation_phases`) as one matrix: (q0, taps (L, 3), bound).

    The value k quarter-samples after frame n (k = 1..3) is sum_l taps[l, k - 1] * x[n + q0 + l] (zero outside x);
    `bound` = max_k sum_l |taps[l, k - 1]|, so no inter-sample value exceeds bound * (largest |x| in its window).
    """
    phases = dsp.interpolation_phases(TRUE_PEAK_OVERSAMPLING)[1:]  # phase 0 is the sample itself
    q0 = min(q for q, _ in phases)
    taps = np.zeros((max(q + len(t) for q, t in phases) - q0, len(phases)))
    for k, (q, t) in enumerate(phases):
        taps[q - q0 : q - q0 + len(t), k] = t
    return q0, taps, float(np.abs(taps).sum(axis=0).max())


def _inter_sample_peaks(x: np.ndarray, frames: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Largest |value| over channels at the 3 inter-sample points after each of `frames` (sorted indices into x,
    (K,)), computed in float64: x (N, C) -> (K,)."""
    q0, taps, _ = _inter_sample_kernel()
    lags = np.arange(len(taps)) + q0
    out = np.empty(len(frames))
    for i in range(0, len(frames), chunk):
        idx = frames[i : i + chunk, None] + lags  # (k, L) sample indices of each frame's window
        inside = (idx >= 0) & (idx < len(x))
        windows = x[np.clip(idx, 0, len(x) - 1)].astype(np.float64) * inside[..., None]  # (k, L, C), 0 outside x
        y = np.abs(np.einsum("klc,lp->kcp", windows, taps))  # (k, C, 3)
        out[i : i + chunk] = y.reshape(len(y), -1).max(axis=1)
    return out


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(a, b) for (a, b) in zip(starts, stops), without a Python loop."""
    lengths = stops - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if not len(starts):
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(lengths.sum()) + offsets


def _clusters(indices: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices -> (first, last) of each cluster of indices no more than `gap` apart."""
    breaks = np.flatnonzero(np.diff(indices) > gap)
    return indices[np.concatenate([[0], breaks + 1])], indices[np.concatenate([breaks, [len(indices) - 1]])]


_TP_CONTEXT = 16  # frames beyond a block that influence its oversampled values (oversampler half width + 1)
_ESTIMATE_MARGIN = 1e-5
"""Relative error allowed for the float32 pre-estimate of inter-sample values (its rounding is below 4e-6)."""
PEAK_BLOCK = 32
"""Frames per block of `PeakBounds`; at least the oversampler's half width, so that the window of every frame in a
block lies within that block and its two neighbours."""
_BOUND_SLACK = 1e-5
"""Added to each `PeakBounds` bound, relative to the block's neighbourhood peak: covers float32 rounding of the
stored samples and of the block statistics (below 1e-6 of it)."""


@lru_cache(maxsize=1)
def _curvature_bound() -> tuple[float, float]:
    """(K, E) such that every inter-sample value y of frame n (`_inter_sample_kernel`) satisfies

        |y| <= max(|x[n]|, |x[n+1]|) + E * A + K * D,

    A = the largest |x| in the frame's window, D = the largest |x[s+1] - 2 x[s] + x[s-1]| centred inside it.

    y minus the linear interpolation between x[n] and x[n+1] is a filter e whose taps sum to zero (both have unit
    gain at DC); summing by parts twice turns it into a filter on second differences (coefficients C2, the
    running sums of the running sums of e) plus boundary terms: K = sum |C2|, E = |sum e| + 2 |C2 at the end|.
    For speech (most energy far below Nyquist) D is much smaller than A, so the bound is close to the samples
    themselves, where the general bound (`_inter_sample_kernel`'s, 2.18 A) is not."""
    q0, taps, _ = _inter_sample_kernel()
    position = np.arange(len(taps)) + q0  # window sample offsets from frame n
    k_bound = e_bound = 0.0
    for k in range(taps.shape[1]):
        alpha = (k + 1) / TRUE_PEAK_OVERSAMPLING
        e = taps[:, k] - alpha * (position == 1) - (1.0 - alpha) * (position == 0)
        c = np.cumsum(e)  # c[-1] = sum(e), zero up to rounding
        c2 = np.cumsum(c[:-1])  # sum_l e_l x_l = c[-1] x[-1] - c2[-1] (x[-1] - x[-2]) + sum_l c2[l] d2[l]
        k_bound = max(k_bound, float(np.abs(c2[:-1]).sum()))
        e_bound = max(e_bound, float(abs(c[-1]) + 2.0 * abs(c2[-1])))
    return k_bound * (1.0 + 1e-9), e_bound * (1.0 + 1e-9)


def _row_max(x: np.ndarray) -> np.ndarray:
    """Largest value of each row of x (R, W) of non-negative floats: (R,). Compared as integers (the bit patterns
    of non-negative floats sort like the numbers), by `reduceat` over the flat rows: numpy's float maximum over
    short rows is 3x slower (NaN checks), and its reduction over a short last axis 2x slower than `reduceat`."""
    as_int = {4: np.int32, 8: np.int64}[x.dtype.itemsize]
    rows, width = x.shape
    if not rows:
        return np.zeros(0, x.dtype)
    flat = np.ascontiguousarray(x).view(as_int).reshape(-1)
    return np.maximum.reduceat(flat, np.arange(0, rows * width, width)).view(x.dtype)


class _BlockMax:
    """Largest value per block of `block` consecutive values, fed in pieces of any length (values >= 0)."""

    def __init__(self, block: int):
        self.block = block
        self._done: list[np.ndarray] = []
        self._partial, self._count = 0.0, 0

    def push(self, values: np.ndarray, scale: float = 1.0) -> None:
        """Append values (n,), each multiplied by `scale` >= 0 (applied to the block maxima: no pass over values)."""
        n, i = len(values), 0
        if self._count and n:
            i = min(self.block - self._count, n)
            self._partial = max(self._partial, float(values[:i].max()) * scale)
            self._count += i
            if self._count == self.block:
                self._done.append(np.array([self._partial], np.float32))
                self._partial, self._count = 0.0, 0
        full = (n - i) // self.block
        if full:
            self._done.append((_row_max(values[i : i + full * self.block].reshape(full, self.block)) * scale)
                              .astype(np.float32))
            i += full * self.block
        if i < n:
            self._partial, self._count = float(values[i:].max()) * scale, n - i

    def push_zeros(self, n: int) -> None:
        """Append n zeros (the same as push(np.zeros(n)), without them)."""
        if self._count and n:
            i = min(self.block - self._count, n)
            n, self._count = n - i, self._count + i
            if self._count == self.block:
                self._done.append(np.array([self._partial], np.float32))
                self._partial, self._count = 0.0, 0
        if n >= self.block:
            self._done.append(np.zeros(n // self.block, np.float32))
        if n % self.block:
            self._partial, self._count = 0.0, n % self.block

    def values(self) -> np.ndarray:
        """Maxima of every block so far, the incomplete last one included: (blocks,) float64."""
        parts = self._done + ([np.array([self._partial])] if self._count else [])
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


class PeakBounds:
    """An upper bound of the true-peak envelope (`_true_peak_envelope`) of every block of PEAK_BLOCK frames of a
    signal fed in pieces: what lets `PeakMap` look at the few blocks that could reach a level, without a pass over
    the signal. `EpisodeWriter` feeds one as turns arrive (a panned turn from its mono samples).

    Per block it keeps two numbers (8 bytes per 32 frames: ~22 MB for an hour at 24 kHz): A, the largest |sample|,
    and D, the largest |second difference| x[s+1] - 2 x[s] + x[s-1] centred in the block (the signal is zero
    outside). A frame's window (24 samples) lies within its block and the two beside it, so its true peak is at
    most min(2.18 A, A' + E A + K D) over those blocks (`_curvature_bound`; A' = its block and the next).
    """

    def __init__(self, channels: int = 1):
        self.channels = channels
        self._a, self._d = _BlockMax(PEAK_BLOCK), _BlockMax(PEAK_BLOCK)
        self._tail = np.zeros((2, channels))  # the last two frames so far (zeros before the start)
        self._first = 0.0  # |x[0]|, the second difference centred just before the signal
        self._frames = 0
        self._bounds: tuple[int, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._frames

    def add(self, x: np.ndarray) -> None:
        """Append frames: (n,) or (n, C)."""
        x = _as_2d(np.asarray(x))
        if x.shape[1] != self.channels:
            raise ValueError(f"peak bounds have {self.channels} channel(s), got {x.shape[1]}")
        if not len(x):
            return
        self._a.push(_channel_peak(x))
        ext = np.concatenate([self._tail, x])  # (2 + n, C)
        self._push_curvature(_channel_peak(ext[2:] - 2 * ext[1:-1] + ext[:-2]))  # centred on frames p-1 .. p+n-2
        self._advance(x[-2:], len(x))

    def add_panned(self, mono: np.ndarray, gains) -> None:
        """Append `mono` (n,) placed with `gains` (C,): the same as add(mono[:, None] * gains), from the mono
        samples (every channel is a multiple of them); the two frames at the seam are computed from the frames."""
        mono = np.asarray(mono).reshape(-1)
        gains = np.asarray(gains, dtype=np.float32).reshape(-1)
        if len(gains) != self.channels:
            raise ValueError(f"peak bounds have {self.channels} channel(s), got {len(gains)} gains")
        if not len(mono):
            return
        top = float(np.abs(gains).max())
        self._a.push(np.abs(mono), top)
        head = np.concatenate([self._tail, mono[:2, None] * gains])  # the frames around the seam
        self._push_curvature(_channel_peak(head[2:] - 2 * head[1:-1] + head[:-2]))  # centred on p-1, p
        if len(mono) > 2:
            d = np.subtract(mono[2:], mono[1:-1])  # centred on p+1 .. p+n-2, no temporaries beyond d
            d -= mono[1:-1]
            d += mono[:-2]
            self._d.push(np.abs(d, out=d), top)
        self._advance(mono[-2:, None] * gains, len(mono))

    def add_silence(self, n: int) -> None:
        """Append n frames of digital silence (the same as add(np.zeros((n, C)))): only the two frames at the seam
        are looked at."""
        seam = min(n, 2)
        if seam:
            self.add(np.zeros((seam, self.channels), np.float32))
        if n > seam:  # from here on, |x| and the second differences (centred on frames after the seam) are 0
            self._a.push_zeros(n - seam)
            self._d.push_zeros(n - seam)
            self._frames += n - seam

    def _push_curvature(self, d: np.ndarray) -> None:
        if self._frames == 0:  # the first value is centred before the signal: |x[0]|
            self._first, d = float(d[0]), d[1:]
        self._d.push(d)

    def _advance(self, last: np.ndarray, n: int) -> None:
        """After appending n frames ending with `last` (the last one or two)."""
        self._tail = np.concatenate([self._tail, last])[-2:]
        self._frames += n

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(bound, neighbourhood peak) per block, (ceil(N / PEAK_BLOCK),) float64 each: the true-peak envelope of
        every frame of block b is at most bound[b]; the neighbourhood peak is the largest |sample| within a
        block of b (the scale of float32 rounding there)."""
        if self._bounds is not None and self._bounds[0] == self._frames:
            return self._bounds[1], self._bounds[2]
        a, d = self._a.values(), self._d.values()  # d: centred on frames 0 .. N-2
        if not len(a):
            return np.zeros(0), np.zeros(0)
        if len(d) < len(a):
            d = np.concatenate([d, [0.0]])
        # the second differences centred on N-1 and N (|x[N-1]|: the signal is zero after it) join the last block
        last = float(np.abs(self._tail[1]).max())
        d[-1] = max(d[-1], float(np.abs(self._tail[0] - 2.0 * self._tail[1]).max()), last)
        a_pad = np.concatenate([[0.0], a, [0.0]])
        d_pad = np.concatenate([[self._first], d, [last]])  # centred just outside: |x[0]| (on -1), |x[N-1]| (on N)
        near = np.maximum(np.maximum(a_pad[:-2], a_pad[1:-1]), a_pad[2:])  # (blocks,)
        curve = np.maximum(np.maximum(d_pad[:-2], d_pad[1:-1]), d_pad[2:])
        k_bound, e_bound = _curvature_bound()
        _, _, general = _inter_sample_kernel()
        here = np.maximum(a_pad[1:-1], a_pad[2:])  # frame n and n + 1 lie in block b or b + 1
        bound = np.minimum(general * near, here + e_bound * near + k_bound * curve) + _BOUND_SLACK * near
        bound[np.isnan(bound)] = np.inf  # a NaN sample: look there rather than skip the block
        self._bounds = (self._frames, bound, near)
        return bound, near


_BLAS_ONE_THREAD = 500_000
"""Most multiply-adds in one matrix product of `_block_estimate`. OpenBLAS (numpy's) runs a product of more than
524 288 (its threshold) on several threads, whose workers then spin for a while after it: on two cores they take
one from the mixer's two threads (seen as CPU time doubled and the next mix's turns twice as slow)."""


@lru_cache(maxsize=1)
def _block_kernel() -> tuple[int, np.ndarray]:
    """The oversampler's inter-sample phases for a whole block of PEAK_BLOCK frames as one banded matrix:
    (q0, kernel (W, 3 * PEAK_BLOCK) float32), W = PEAK_BLOCK + L - 1. With w = x[f + q0 : f + q0 + W] (one channel),
    (w @ kernel)[(k - 1) PEAK_BLOCK + i] is the value k quarter-samples after frame f + i (`_inter_sample_kernel`)."""
    q0, taps, _ = _inter_sample_kernel()
    kernel = np.zeros((PEAK_BLOCK + len(taps) - 1, taps.shape[1], PEAK_BLOCK), np.float32)
    for i in range(PEAK_BLOCK):
        kernel[i : i + len(taps), :, i] = taps
    return q0, kernel.reshape(len(kernel), -1)


def _block_estimate(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Float32 estimate of `_inter_sample_peaks` at every frame of the blocks of PEAK_BLOCK frames that start at
    `starts` (B,) (indices into x (N, C), x being zero outside): (B, PEAK_BLOCK). One matrix product per block and
    channel on its samples (no window per frame); only 24 of each column's W entries are non-zero, so the rounding
    error is that of the 24-tap sum: below 4e-6 x the largest |x| in the frame's window."""
    q0, kernel = _block_kernel()
    width = len(kernel)
    idx = starts[:, None] + (q0 + np.arange(width))  # (B, W)
    if len(starts) and (starts[0] + q0 < 0 or starts[-1] + q0 + width > len(x)):  # a window reaches past an end
        rows = x[np.clip(idx, 0, len(x) - 1)]  # (B, W, C), zeros outside x below (no padded copy of x)
        rows[(idx < 0) | (idx >= len(x))] = 0.0
    else:
        rows = x[idx]  # (B, W, C)
    rows = np.ascontiguousarray(rows.transpose(0, 2, 1), dtype=np.float32).reshape(-1, width)  # (B * C, W)
    y = np.empty((len(rows), kernel.shape[1]), np.float32)
    step = max(1, _BLAS_ONE_THREAD // kernel.size)  # rows per product: each runs on this thread alone
    for i in range(0, len(rows), step):
        np.matmul(rows[i : i + step], kernel, out=y[i : i + step])
    y = np.abs(y, out=y).reshape(len(starts), -1, PEAK_BLOCK)  # (B, C * 3, PEAK_BLOCK)
    out = y[:, 0].copy()
    for k in range(1, y.shape[1]):  # elementwise: numpy's reductions over short axes are slow
        np.maximum(out, y[:, k], out=out)
    return out


def _envelope_at(x: np.ndarray, starts: np.ndarray, scale: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The frames of the blocks of PEAK_BLOCK frames that start at `starts` (sorted indices into x (N, C), x being
    zero outside; frames past the end of x are left out) whose true-peak envelope exceeds `threshold`: (frames (K,),
    exact envelope (K,)). scale (B,): at least the largest |x| in the window of each frame of the block (sets the
    float32 estimate's error margin).

    Inter-sample values are estimated in float32 and computed exactly (float64) only where the estimate comes
    within its error of the threshold."""
    if not len(starts):
        return np.zeros(0, np.int64), np.zeros(0)
    estimate = _block_estimate(x, starts).ravel()
    frames = (starts[:, None] + np.arange(PEAK_BLOCK)).ravel()
    margin = np.repeat(_ESTIMATE_MARGIN * np.asarray(scale, dtype=np.float64), PEAK_BLOCK)
    inside = frames < len(x)
    m = np.zeros(len(frames))
    m[inside] = _channel_peak(x[frames[inside]])
    keep = ((estimate + margin > threshold) | (m > threshold)) & inside
    frames, m = frames[keep], m[keep]
    env = np.maximum(m, _inter_sample_peaks(x, frames))
    over = env > threshold
    return frames[over], env[over]


def _true_peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per-frame true peak: max over channels of |x| at the frame and its 3 inter-sample points; (N, C) -> (N,)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(_channel_peak(x), _inter_sample_peaks(x, np.arange(len(x))))


class PeakMap:
    """The true-peak envelope of a source, kept only where it is loud: what the limiter and the true-peak checks
    need, computed once and reused by `solve_gain`'s passes and `limited_blocks`.

    source: (N,) or (N, C) array, or an array-like with `ndim == 2`, `len()` and slicing (e.g. `mix.RawFrames`).
    bounds: the source's `PeakBounds` if they were gathered as it was written (`EpisodeWriter` does); else they
    are found in one pass over the source. `over(level)` reads the source only in the blocks whose bound exceeds
    a little less than `level` (HEADROOM_DB lower, so the next few gain corrections need no new scan), and scans
    again only for a lower level. block: frames read at a time (a numpy array is not read in blocks: its candidate
    blocks are scanned SCAN_CANDIDATES at a time, wherever they lie).
    """

    HEADROOM_DB = 0.5
    SCAN_CANDIDATES = 4096
    """Candidate blocks per `_envelope_at` call when the source is a numpy array (slices are views, so a call may span
    any number of frames; its temporaries grow with the candidates, ~2 KB each); other sources are read `block`
    frames at a time."""

    def __init__(self, source, block: int | None = None, bounds: PeakBounds | None = None):
        self.source, self.block = _as_2d(source), block or BLOCK_FRAMES
        if bounds is not None and len(bounds) != len(self.source):
            raise ValueError(f"peak bounds cover {len(bounds)} frames, the source has {len(self.source)}")
        self.bounds = bounds
        self.threshold = math.inf
        self.frames, self.values = np.zeros(0, np.int64), np.zeros(0)
        self._sample_peak: float | None = None
        self._stretches = None
        self._runs = None  # the last `_limiter_runs`: the gain search's last pass is the limiter's gain

    def over(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(frames (K,), envelope (K,)) of every frame whose true peak exceeds `level` (linear, > 0)."""
        if level < self.threshold:
            self._scan(level * 10.0 ** (-self.HEADROOM_DB / 20.0))
        keep = self.values > level
        return self.frames[keep], self.values[keep]

    def sample_peak(self) -> float:
        """Largest |sample| of the source."""
        if self._sample_peak is None:
            source = self.source
            self._sample_peak = max((float(_channel_peak(np.asarray(source[i : i + self.block])).max())
                                     for i in range(0, len(source), self.block)), default=0.0)
        return self._sample_peak

    def true_peak(self) -> float:
        """The source's true peak (linear): the envelope above its sample peak, or the sample peak itself."""
        peak = self.sample_peak()
        if peak <= 0.0:
            return 0.0
        frames, values = self.over(peak)
        return float(values.max()) if len(values) else peak

    def _block_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self.bounds is None:
            self.bounds = PeakBounds(self.source.shape[1])
            for start in range(0, len(self.source), self.block):
                self.bounds.add(np.asarray(self.source[start : start + self.block]))
        return self.bounds.bounds()

    def _scan(self, threshold: float) -> None:
        """Find every frame over `threshold`, reading the source only around the blocks whose bound exceeds it."""
        n = len(self.source)
        bound, near = self._block_bounds()
        blocks = np.flatnonzero(bound > threshold)
        starts = blocks * PEAK_BLOCK  # sorted first frames of the candidate blocks
        if isinstance(self.source, np.ndarray):  # slicing is free: SCAN_CANDIDATES candidate blocks at a time
            reads = starts[:: self.SCAN_CANDIDATES]
            ends = np.append(starts[self.SCAN_CANDIDATES :: self.SCAN_CANDIDATES], n)
        else:
            step = -(-self.block // PEAK_BLOCK) * PEAK_BLOCK  # whole peak blocks per read
            reads = np.unique(starts // step) * step  # only the read blocks with candidates
            ends = np.minimum(reads + step, n)
        stops = dict(zip(reads.tolist(), ends.tolist()))

        def scan(part: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
            found = []
            for start in part:
                stop = stops[int(start)]
                a, b = np.searchsorted(starts, [start, stop])
                lo, hi = max(0, start - _TP_CONTEXT), min(n, stop + _TP_CONTEXT)
                f, v = _envelope_at(np.asarray(self.source[lo:hi]), starts[a:b] - lo, near[blocks[a:b]], threshold)
                found.append((f + lo, v))
            return found

        # the read blocks in two halves, the second on the helper thread (work: frames of the candidate blocks)
        split = len(reads) // 2
        first, second = in_parallel(lambda: scan(reads[:split]), lambda: scan(reads[split:]),
                                    len(starts) * PEAK_BLOCK // 2 if split else 0)
        found = first + second
        self.frames = np.concatenate([f for f, _ in found]) if found else np.zeros(0, np.int64)
        self.values = np.concatenate([v for _, v in found]) if found else np.zeros(0)
        self.threshold = threshold

    CACHE_BYTES = 64 << 20
    """Most memory `stretches` keeps between gain passes; beyond it (hours of loud audio) each pass refilters."""
    GROUP_FRAMES = BLOCK_FRAMES
    """Frames per group of `stretches` (memory per group when they are not kept)."""

    def stretches(self, sr: int, half: int, end: int):
        """For the loudness corrections of `_limited_sub_energies`: the stretches around the loud frames, each
        padded by the limiter's reach and the K-filter's settling time and clipped to [0, end), as
        `_Stretches` groups of at most GROUP_FRAMES frames. The K-filter runs over each stretch (one call per
        group and channel, the channels on two threads, each state carried on); the first `settle` frames of a
        stretch are its history (no limited frame lies there), kept with it so that no rows are gathered. Kept for
        the next pass while they fit in CACHE_BYTES; else a generator, refiltering on every pass (the same
        numbers)."""
        key = (sr, half, end, self.threshold)
        if self._stretches is not None and self._stretches[0] == key:
            return self._stretches[1]
        spans = []
        if len(self.frames):
            pad = _limiter_reach(half) + k_weighting_settle(sr)  # the limiter's gain is 1 beyond its reach
            first, last = _clusters(self.frames, 2 * pad)
            spans = [(max(0, a - pad), min(end, b + 1 + pad)) for a, b in zip(first, last) if max(0, a - pad) < end]
        if sum(hi - lo for lo, hi in spans) * self.source.shape[1] * 16 > self.CACHE_BYTES:
            return self._filtered(sr, spans)  # a generator: memory for one group at a time
        out = list(self._filtered(sr, spans))
        self._stretches = (key, out)
        return out

    def _filtered(self, sr: int, spans):
        settle, channels = k_weighting_settle(sr), self.source.shape[1]
        states = [np.zeros(K_ORDER)] * channels
        for group in _groups([(lo, hi, settle if lo > 0 else 0) for lo, hi in spans], self.GROUP_FRAMES):
            lo, hi, _ = np.array(group).T
            start = np.concatenate([[0], np.cumsum(hi - lo)])
            xs = np.empty((channels, start[-1]))
            for (a, b, _), r in zip(group, start):
                xs[:, r : r + b - a] = np.asarray(self.source[a:b]).T
            # exact (to 1e-6) from `settle` frames into a stretch: its history, where no frame is limited
            filtered = channel_map(lambda c: k_filter(xs[c], sr, states[c]), channels, xs.shape[1])
            kx, states = [y for y, _ in filtered], [state for _, state in filtered]
            yield _Stretches(lo, hi, xs, kx, sr)


class _Stretches:
    """A group of `PeakMap.stretches`: source frames [lo, hi) per piece (P,), concatenated as xs, the source frames
    channel by channel (C, W) float64, and kx, their K-weighting: C arrays (W,) (each filtered on its own, the
    channels on two threads); with each row's 100 ms sub-block, as runs (first row of each run, its sub-block)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, xs: np.ndarray, kx: np.ndarray, sr: int):
        self.lo, self.hi, self.xs, self.kx = lo, hi, xs, kx
        self.start = np.concatenate([[0], np.cumsum(hi - lo)])  # first row of each piece
        first, last = (10 * lo + 4) // sr, (10 * (hi - 1) + 4) // sr  # sub-blocks of each piece's ends
        self.sub_blocks = _ranges(first, last + 1)  # each piece's sub-blocks in turn; may repeat across pieces
        piece = np.repeat(np.arange(len(lo)), last + 1 - first)
        begins = (self.sub_blocks * sr + 5) // 10  # sub-block j starts at frame (j sr + 5) // 10
        self.runs = self.start[piece] + np.maximum(begins - lo[piece], 0)  # first row of each (piece, sub-block)

    def rows(self, frames: np.ndarray) -> np.ndarray:
        """Sorted source frames (K,), each inside a piece -> their rows (K,)."""
        piece = np.searchsorted(self.hi, frames, side="right")
        return frames - self.lo[piece] + self.start[piece]


def _groups(spans, size: int):
    """Spans (lo, hi, history) in order -> lists of spans of at most `size` frames in all, a span longer than that
    cut in pieces (the history, frames at the start, stays with the first)."""
    group, room = [], size
    for lo, hi, history in spans:
        while lo < hi:
            take = min(hi - lo, room)
            group.append((lo, lo + take, min(history, take)))
            lo, room, history = lo + take, room - take, max(0, history - take)
            if not room:
                yield group
                group, room = [], size
    if group:
        yield group


def true_peak(x: np.ndarray, sr: int | None = None) -> float:
    """Largest absolute value of x after 4x band-limited oversampling (linear; sr is accepted for symmetry).

    Exact: inter-sample values are computed only where they could exceed the largest sample.
    """
    return PeakMap(x).true_peak()


def true_peak_dbtp(x: np.ndarray, sr: int) -> float:
    """True peak in dBTP (dB relative to full scale, 4x oversampled); -inf for silence."""
    peak = true_peak(x, sr)
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _sliding_min(x: np.ndarray, width: int) -> np.ndarray:
    """min(x[i : i + width]) for every full window (van Herk / Gil-Werman, O(N)); (N,) -> (N - width + 1,)."""
    n = len(x)
    blocks = -(-n // width)
    xp = np.full(blocks * width, np.inf)
    xp[:n] = x
    xp = xp.reshape(blocks, width)
    prefix = np.minimum.accumulate(xp, axis=1).ravel()
    suffix = np.minimum.accumulate(xp[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[: n - width + 1], prefix[width - 1 : n])


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """mean(x[i : i + width]) for every full window; (N,) -> (N - width + 1,)."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    return (c[width:] - c[:-width]) / width


def _sparse_sliding_min(n: int, rows: np.ndarray, values: np.ndarray, width: int) -> np.ndarray:
    """`_sliding_min` of a signal of n values that are 1 except values (K,) < 1 at rows (K,): (n - width + 1,).
    Each low value lowers the windows that hold it (K x width updates, no pass over the ones); the same numbers."""
    m = np.ones(n - width + 1)
    first = np.maximum(rows - (width - 1), 0)  # windows i hold row j for j - width + 1 <= i <= j
    last = np.minimum(rows, n - width)
    span = np.arange(width)
    for i in range(0, len(rows), 4096):  # bounded temporaries
        idx = first[i : i + 4096, None] + span
        keep = idx <= last[i : i + 4096, None]
        np.minimum.at(m, idx[keep], np.broadcast_to(values[i : i + 4096, None], idx.shape)[keep])
    return m


def _smooth_ratio(r: np.ndarray, half: int, lows: np.ndarray | None = None) -> np.ndarray:
    """Allowed gains r (N,) -> smooth gain (N,) <= r: the sliding minimum over +-half frames, smoothed by two
    moving averages of half+1 frames (a triangle spanning +-half). Frames outside r count as silent (ratio 1).
    gain[n] depends on r within +-_limiter_reach(half) frames only. lows: the rows of r below 1, when known (r is 1
    everywhere else): the sliding minimum then only visits the windows around them, where they are few."""
    width = 2 * half + 1
    if lows is not None and len(lows) * width <= len(r):
        m = _sparse_sliding_min(len(r) + 4 * half, lows + 2 * half, r[lows], width)  # the same, padded with ones
    else:
        pad = np.ones(2 * half)
        m = _sliding_min(np.concatenate([pad, r, pad]), width)  # (N + 2*half,), centred on frames -half..N+half-1
    w = half // 2 * 2 + 1  # odd box width; two boxes span +-(w - 1)
    smooth = _moving_average(_moving_average(m, w), w)  # centred on frames -half + (w-1) ..
    offset = half - (w - 1)
    return np.minimum(smooth[offset : offset + len(r)], 1.0)


def _limiter_reach(half: int) -> int:
    """Frames over which one frame's allowed gain influences the smoothed gain, each side (half + w - 1)."""
    return half + half // 2 * 2


def _limiter_runs(peaks: PeakMap, gain: float, ceiling: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    """The limiter's gain for source * gain where it may differ from 1: (frames (K,) sorted, gains (K,) <= 1).

    r = ceiling / envelope is the largest gain each frame allows (1 where the envelope is below the ceiling). The
    smoothed gain is computed only around frames over the ceiling, on those stretches alone, each padded by twice
    the limiter's reach, so that every frame within reach sees the same neighbourhood as in the whole signal.
    """
    key = (gain, ceiling, half, peaks.threshold)
    if peaks._runs is not None and peaks._runs[0] == key:
        return peaks._runs[1]
    over, env = peaks.over(ceiling / gain)
    if not len(over):
        return over, np.zeros(0)
    reach = _limiter_reach(half)
    first, last = _clusters(over, 4 * reach)
    frames = _ranges(np.maximum(first - 2 * reach, 0), np.minimum(last + 2 * reach + 1, len(peaks.source)))
    r = np.ones(len(frames))
    lows = np.searchsorted(frames, over)
    r[lows] = ceiling / (gain * env)
    smooth = _smooth_ratio(r, half, lows)
    limited = smooth < 1.0
    peaks._runs = ((gain, ceiling, half, peaks.threshold), (frames[limited], smooth[limited]))
    return peaks._runs[1]


def _limiter_gain(x: np.ndarray, ceiling: float, half: int) -> np.ndarray:
    """Smooth gain (N,) <= 1 such that gain[n] * true_peak_envelope[n] <= ceiling for every frame; x: (N, C).

    r = ceiling / envelope is the largest gain each frame allows; its sliding minimum over +-half frames,
    smoothed by two moving averages of half+1 frames (a triangle spanning +-half), is an average of values
    that are each <= r[n], hence <= r[n] itself: the limiter looks `half` frames ahead and ramps smoothly.
    Frames outside x count as silent (gain 1). Where no frame within reach exceeds the ceiling, the gain is 1.
    """
    gain = np.ones(len(x))
    frames, values = _limiter_runs(PeakMap(x), 1.0, ceiling, half)
    gain[frames] = values
    return gain


def _limiter_setup(sr: int, gain_db: float, true_peak_db: float) -> tuple[float, float, int]:
    """(linear gain, ceiling, half window in frames) of the limiter."""
    half = max(2, int(round(LIMITER_HALF_WINDOW_S * sr)))
    return 10.0 ** (gain_db / 20.0), 10.0 ** ((true_peak_db - LIMITER_MARGIN_DB) / 20.0), half


def limited_blocks(source, sr: int, gain_db: float, true_peak_db: float = -1.0,
                   block: int = BLOCK_FRAMES, *, peaks: PeakMap | None = None,
                   out: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield source * 10^(gain_db/20), true-peak limited to `true_peak_db`, in blocks of (<= block, C) float32.

    source: (N,) or (N, C) array, or any object with `ndim == 2`, `len()` and slicing along axis 0 (e.g.
    `mix.RawFrames` over a file); it is read block by block. peaks: the source's `PeakMap`, if one exists
    already (`solve_gain` fills one); else one is made (one more pass over the source). out: an (N, C) float32
    array to fill, if the whole result is wanted in memory; the blocks are then views of it. out may be the source
    itself (a float32 array): it is then overwritten block by block, each block read before it is written.
    Every sample is computed in float64 and rounded once. Blocks are computed two at a time, the second on the
    helper thread (`in_parallel`), and yielded in order.
    """
    source = _as_2d(source)
    g, ceiling, half = _limiter_setup(sr, gain_db, true_peak_db)
    frames, values = _limiter_runs(peaks if peaks is not None else PeakMap(source), g, ceiling, half)
    step = max(1, block)

    def limit(start: int) -> np.ndarray:
        stop = min(len(source), start + step)
        x = np.asarray(source[start:stop])
        y = out[start:stop] if out is not None else np.empty(x.shape, np.float32)
        k, j = np.searchsorted(frames, [start, stop])
        rows = frames[k:j] - start
        limited = (x[rows].astype(np.float64) * g) * values[k:j, None]  # read first: y may be x itself
        np.multiply(x, np.float64(g), out=y)  # float64 product, rounded to float32 on the way out
        y[rows] = limited
        return y

    starts = range(0, len(source), step)
    for i in range(0, len(starts), 2):
        if i + 1 < len(starts):  # two blocks apart: they read and write disjoint rows, also in place
            yield from in_parallel(lambda: limit(starts[i]), lambda: limit(starts[i + 1]),
                                   min(step, len(source) - starts[i + 1]))
        else:
            yield limit(starts[i])


def _limited_sub_energies(source, sr: int, gain: float, ceiling: float, half: int, peaks: PeakMap,
                          sub: np.ndarray) -> np.ndarray:
    """Channel-summed K-weighted energy per complete sub-block (J,) of the limited signal, from `sub` (J,), those
    of the source itself, without filtering the whole signal again.

    K-weighting is linear: K(g x gain) = g K(x) - K(d) with d = g x (1 - gain), which is zero except where the
    limiter acts. So only around there (`PeakMap.stretches`: the limiter's reach plus the filter's settling time
    on each side) are K(x) and K(d) computed, and each sub-block's energy corrected by sum(K(d)^2 - 2 g K(x) K(d)).
    The settling time is where the filter's impulse response falls below 1e-6: the correction, itself a small
    part of the energy, is then exact to ~1e-6 of itself (~1e-7 LU), far inside `solve_gain`'s tolerance. The
    stretches come from every frame in `peaks` (a superset of where any of the gain passes limits), so K(x) there
    is filtered once and kept in `peaks`; K(d) is filtered over them in one call per group and channel, the
    channels on two threads (`channel_map`).
    """
    energies = gain * gain * sub
    frames, values = _limiter_runs(peaks, gain, ceiling, half)
    if not len(frames) or not len(sub):
        return energies
    channels = peaks.source.shape[1]
    states = [np.zeros(K_ORDER)] * channels
    for group in peaks.stretches(sr, half, int(_sub_block_bounds(sr, len(sub))[-1])):
        a, b = np.searchsorted(frames, [group.lo[0], group.hi[-1]])
        rows, scale = group.rows(frames[a:b]), gain * (1.0 - values[a:b])  # every limited frame lies in a piece
        done = channel_map(lambda c: _correction_terms(group.xs[c], group.kx[c], rows, scale, gain, sr, states[c]),
                           channels, group.xs.shape[1])
        states = [state for _, state in done]
        q = done[0][0]
        for more, _ in done[1:]:
            q += more  # summed over channels, then over the rows of each run
        np.add.at(energies, group.sub_blocks, np.add.reduceat(q, group.runs))
    # a sub-block of digital silence holding a stretch's history gets a cross term of the ring input (1e-30) with
    # K(x) ~ 0 there: below 1e-50 in size, but it must not turn an energy of zero negative
    return np.maximum(energies, 0.0)


def _correction_terms(xs: np.ndarray, kx: np.ndarray, rows: np.ndarray, scale: np.ndarray, gain: float, sr: int,
                      state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One channel of a `_Stretches` group: its frames xs (W,) and their K-weighting kx (W,), the limited rows (K,)
    and what the limiter takes off them, scale = g (1 - gain) (K,) -> (K(d)^2 - 2 g K(x) K(d) per row (W,), the
    filter's state after the group (K_ORDER,)), K(d) continuing from `state`."""
    d = np.full(len(xs), _RING_INPUT)  # not 0: no subnormal filter states in the long runs of d == 0
    d[rows] += xs[rows] * scale
    u, state = k_filter(d, sr, state)
    q = np.multiply(kx, -2.0 * gain)
    q += u
    q *= u
    return q, state


def _estimated_sub_energies(sr: int, gain: float, ceiling: float, half: int, peaks: PeakMap,
                            sub: np.ndarray) -> np.ndarray:
    """A first guess of `_limited_sub_energies` without filtering anything: K(g x gain) taken as g gain K(x), so
    each sub-block loses g^2 sum (1 - gain^2) K(x)^2 over its limited frames (the limiter's gain moves slowly next
    to the K-filter's memory at the high frequencies that carry most of a peak's weighted energy). Uses the
    K(x) that `PeakMap.stretches` keeps for the exact passes."""
    energies = gain * gain * sub
    frames, values = _limiter_runs(peaks, gain, ceiling, half)
    if not len(frames) or not len(sub):
        return energies
    for group in peaks.stretches(sr, half, int(_sub_block_bounds(sr, len(sub))[-1])):
        a, b = np.searchsorted(frames, [group.lo[0], group.hi[-1]])
        rows = group.rows(frames[a:b])
        removed = _squares(group.kx[0][rows])
        for kx in group.kx[1:]:
            removed += _squares(kx[rows])  # (K,) summed over channels
        removed *= (gain * gain) * (1.0 - values[a:b] ** 2)
        energies -= np.bincount((10 * frames[a:b] + 4) // sr, removed, minlength=len(sub))[: len(sub)]
    return np.maximum(energies, 0.0)  # a guess can overshoot where the limiter takes almost everything


def solve_gain(source, sr: int, target_lufs: float = -16.0, true_peak_db: float = -1.0,
               measured_lufs: float | None = None, tolerance_lu: float = 0.05, max_passes: int = 4,
               *, meter: LoudnessMeter | None = None, peaks: PeakMap | None = None) -> float:
    """Gain in dB that brings `source` to `target_lufs` after true-peak limiting to `true_peak_db`.

    Starts from target - measured (measured is computed if not given). When the limiter has to act it
    lowers loudness a little: the gain is raised by a first guess of that loss (`_estimated_sub_energies`), then
    the loudness of the limited result is computed exactly and the gain corrected, up to `max_passes` times, until
    it is within `tolerance_lu` of the target. A correction filters only the stretches the limiter changes (see
    `_limited_sub_energies`), starting from the source's own sub-block energies: `meter`, a LoudnessMeter that
    has been fed exactly `source` (as EpisodeWriter's is), or else one pass over the source. `peaks`: a PeakMap of
    `source` to fill (and reuse in `limited_blocks`). Returns 0 for silence (nothing to normalize).
    """
    source = _as_2d(source)
    if meter is None and measured_lufs is None:
        meter = _meter_of(source, sr)
    if measured_lufs is None:
        measured_lufs = meter.integrated()
    if not math.isfinite(measured_lufs):
        return 0.0
    gain = target_lufs - measured_lufs
    peaks = peaks if peaks is not None else PeakMap(source)
    g, ceiling, half = _limiter_setup(sr, gain, true_peak_db)
    if not len(peaks.over(ceiling / g)[0]):
        return gain  # the limiter will not act: loudness scales exactly with the gain
    if meter is None:
        meter = _meter_of(source, sr)
    sub = meter.sub_block_energies().sum(axis=1)
    # the stretches' K(x) (filtered on the helper thread) and the limiter's gain for the guess (here) at once: both
    # need only the frames found above; each keeps its result in `peaks`
    end = int(_sub_block_bounds(sr, len(sub))[-1])
    near = len(peaks.frames) * 2 * (_limiter_reach(half) + k_weighting_settle(sr))  # most frames the stretches hold
    in_parallel(lambda: _limiter_runs(peaks, g, ceiling, half), lambda: peaks.stretches(sr, half, end), near)
    # a first guess of the limiter's loudness loss, so that one exact pass usually confirms the gain
    guess = target_lufs - _gated_loudness(_estimated_sub_energies(sr, g, ceiling, half, peaks, sub), sr)
    if math.isfinite(guess):
        gain += guess
    for _ in range(max_passes):
        g = 10.0 ** (gain / 20.0)
        error = target_lufs - _gated_loudness(_limited_sub_energies(source, sr, g, ceiling, half, peaks, sub), sr)
        if abs(error) <= tolerance_lu:
            break
        gain += error
    return gain


def _meter_of(source, sr: int) -> LoudnessMeter:
    meter = LoudnessMeter(sr, source.shape[1])
    for start in range(0, len(source), BLOCK_FRAMES):
        meter.add(source[start : start + BLOCK_FRAMES])
    return meter


def normalize_loudness(x: np.ndarray, sr: int, target_lufs: float = -16.0, true_peak_db: float = -1.0) -> np.ndarray:
    """x ((N,) or (N, C)) gained to `target_lufs` integrated with true peak <= `true_peak_db`; float32, same shape.

    Loud peaks are handled by a look-ahead true-peak limiter rather than by lowering the whole signal, so
    the loudness target holds. Silence is returned unchanged.
    """
    x = np.asarray(x)
    peaks = PeakMap(x)
    gain = solve_gain(x, sr, target_lufs, true_peak_db, peaks=peaks)
    blocks = list(limited_blocks(x, sr, gain, true_peak_db, peaks=peaks))
    out = np.concatenate(blocks) if blocks else np.zeros((0, _as_2d(x).shape[1]), np.float32)
    return out.reshape(x.shape)
