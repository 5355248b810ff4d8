"""Loudness per ITU-R BS.1770-4 (K-weighting, gated integrated loudness, true peak) and normalization.

Everything works on blocks so an hour-long episode is measured and normalized in bounded memory:
`LoudnessMeter` accumulates 100 ms sub-block energies as audio streams in, and `limited_blocks` yields the
gained and true-peak-limited signal block by block from any array-like source (a numpy array or memmap).
Arrays are (N,) mono or (N, C) with C channels of weight 1 (L/R; surround weights are not needed here).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
_WORK_FRAMES = 1 << 15
"""Frames per piece of work inside a block: temporaries stay under ~0.5 MB, where numpy reuses memory (larger
arrays cost fresh pages on every allocation, which dominated the time on a 2-core VM)."""


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


class _KWeighting:
    """Streaming K-weighting: the two biquads run as IIR filters (scipy.signal.sosfilt, float64, compiled),
    carrying their state from one call to the next."""

    def __init__(self, sr: int, channels: int):
        self.sos = k_weighting_sos(sr)
        self.state = np.zeros((len(self.sos), channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (n, C) -> (n, C) K-weighted (float64), continuing from the previous call."""
        return self.channels_first(np.asarray(x).T).T

    def channels_first(self, x: np.ndarray) -> np.ndarray:
        """x: (C, n) -> (C, n) K-weighted (float64): the filter's own layout (time contiguous), no transposes."""
        from scipy.signal import sosfilt

        y, self.state = sosfilt(self.sos, np.ascontiguousarray(x, dtype=np.float64), axis=-1, zi=self.state)
        return y


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

    def _boundary(self, j: int) -> int:
        """First frame of sub-block j (100 ms steps, rounded for rates not divisible by 10)."""
        return (j * self.sr + 5) // 10

    def add(self, x: np.ndarray) -> None:
        """Append samples: (n,) for a mono meter or (n, C)."""
        x = _as_2d(np.asarray(x))
        if x.shape[1] != self.channels:
            raise ValueError(f"meter has {self.channels} channel(s), got {x.shape[1]}")
        step = min(BLOCK_FRAMES, _WORK_FRAMES)
        for start in range(0, len(x), step):
            piece = x[start : start + step]
            if piece.any():
                self._add(self._filter.channels_first(piece.T))
            else:
                self._add_silence(len(piece))

    def add_panned(self, mono: np.ndarray, gains) -> None:
        """Append `mono` (n,) placed on the channels with constant `gains` (C,): the same as add(mono[:, None] *
        gains), filtering one channel instead of C. K-weighting is linear, so channel c's output is gains[c] times
        the mono signal's output plus the ring-out of channel c's own filter state."""
        from scipy.signal import sosfilt

        mono = np.asarray(mono, dtype=np.float64).reshape(-1)
        gains = np.asarray(gains, dtype=np.float64).reshape(-1, 1)  # (C, 1)
        if len(gains) != self.channels:
            raise ValueError(f"meter has {self.channels} channel(s), got {len(gains)} gains")
        sos, settle = self._filter.sos, k_weighting_settle(self.sr, 1e-13)
        step = min(BLOCK_FRAMES, _WORK_FRAMES)
        for start in range(0, len(mono), step):
            piece = mono[start : start + step]
            z, mono_state = sosfilt(sos, piece, zi=np.zeros((len(sos), 2)))  # the mono signal from rest
            sq = (gains * gains) * (z * z)  # (C, n)
            state = self._filter.state  # (sections, C, 2)
            ring = min(len(piece), settle)
            if state.any():  # the previous input rings out under the new one
                free, rung = sosfilt(sos, np.zeros((self.channels, ring)), axis=-1, zi=state)  # (C, ring)
                sq[:, :ring] += free * (free + 2.0 * gains * z[:ring])
                state = rung if ring == len(piece) else np.zeros_like(state)  # else: below 1e-13, dropped
            else:
                state = np.zeros_like(state)
            self._filter.state = state + gains[None, :, :] * mono_state[:, None, :]
            self._add_squares(sq)

    def _add_silence(self, n: int) -> None:
        """n frames of digital silence: the filter rings out its state (until its response is below 1e-13, as
        `k_weighting_settle` measures), then the rest adds nothing but time."""
        ring = min(n, k_weighting_settle(self.sr, 1e-13))
        if ring and self._filter.state.any():
            self._add(self._filter.channels_first(np.zeros((self.channels, ring))))
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

    def _add(self, z: np.ndarray) -> None:
        """z: (C, n) K-weighted samples."""
        self._add_squares(z * z)

    def _add_squares(self, sq: np.ndarray) -> None:
        """sq: (C, n) squares of K-weighted samples, summed into the 100 ms sub-blocks."""
        n = sq.shape[1]
        if not n:
            return
        pos, end = self._frames, self._frames + n
        j0 = self._sub_count  # the sub-block in progress
        last = (10 * end + 4) // self.sr  # sub-blocks 0..last start at or before `end`
        if last <= j0:  # no sub-block completes
            self._partial = self._partial + sq.sum(axis=1)
        else:
            stops = _sub_block_bounds(self.sr, last)[j0 + 1 :] - pos  # ends of sub-blocks j0..last-1, in z
            starts = np.concatenate([[0], stops])
            sums = np.add.reduceat(sq, starts[starts < n], axis=1).T  # complete ones, then the partial one
            done = last - j0
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
    (K,)): x (N, C) float64 -> (K,)."""
    q0, taps, _ = _inter_sample_kernel()
    lags = np.arange(len(taps)) + q0
    out = np.empty(len(frames))
    for i in range(0, len(frames), chunk):
        idx = frames[i : i + chunk, None] + lags  # (k, L) sample indices of each frame's window
        inside = (idx >= 0) & (idx < len(x))
        windows = x[np.clip(idx, 0, len(x) - 1)] * inside[..., None]  # (k, L, C), zero outside x
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


def _inter_sample_estimate(x: np.ndarray, frames: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Float32 estimate of `_inter_sample_peaks` at `frames` (sorted indices into x (N, C)): (K,). Its rounding
    error is below 4e-6 x the largest |x| in the window."""
    q0, taps, _ = _inter_sample_kernel()
    length = len(taps)
    padded = np.zeros((len(x) + length, x.shape[1]), np.float32)
    padded[-q0 : -q0 + len(x)] = x  # frame n's window starts at padded row n
    windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)  # (N + 1, C, L), a view
    taps32 = taps.astype(np.float32)
    out = np.empty(len(frames), np.float32)
    for i in range(0, len(frames), chunk):
        y = np.abs(windows[frames[i : i + chunk]] @ taps32)  # (k, C, 3)
        out[i : i + chunk] = y.reshape(len(y), -1).max(axis=1)
    return out


def _envelope_over(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of x (N, C) whose true-peak envelope exceeds `threshold`: (frames (K,) sorted, exact envelope (K,)).

    Inter-sample values can only exceed the threshold near samples louder than threshold / bound (see
    `_inter_sample_kernel`); there they are estimated in float32, and computed exactly (float64) only where the
    estimate comes within its error of the threshold. Speech has few such places.
    """
    m = _channel_peak(x)
    hot = np.flatnonzero(m > threshold / _inter_sample_kernel()[2])
    if not len(hot):
        return hot, np.zeros(0)
    q0, taps, _ = _inter_sample_kernel()
    first, last = _clusters(hot, len(taps))
    # frame n's window is x[n + q0 : n + q0 + L]: it holds hot sample s for n in [s - q0 - L + 1, s - q0]
    frames = _ranges(np.maximum(first - q0 - len(taps) + 1, 0), np.minimum(last - q0 + 1, len(x)))
    estimate = _inter_sample_estimate(x, frames)
    margin = _ESTIMATE_MARGIN * float(m[hot].max())
    frames = frames[(estimate + margin > threshold) | (m[frames] > threshold)]
    env = np.maximum(m[frames], _inter_sample_peaks(np.asarray(x, np.float64), frames))
    over = env > threshold
    return frames[over], env[over]


def _true_peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per-frame true peak: max over channels of |x| at the frame and its 3 inter-sample points; (N, C) -> (N,)."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(_channel_peak(x), _inter_sample_peaks(x, np.arange(len(x))))


class PeakMap:
    """The true-peak envelope of a source, kept only where it is loud: what the limiter and the true-peak checks
    need, computed once (one pass over the source) and reused by `solve_gain`'s passes and `limited_blocks`.

    source: (N,) or (N, C) array, or an array-like with `ndim == 2`, `len()` and slicing (e.g. `mix.RawFrames`).
    `over(level)` computes the envelope above a little less than `level` on first use (HEADROOM_DB lower, so the
    next few gain corrections need no new pass) and again only for a lower level.
    """

    HEADROOM_DB = 0.5

    def __init__(self, source, block: int | None = None):
        self.source, self.block = _as_2d(source), block or min(BLOCK_FRAMES, _WORK_FRAMES)
        self.threshold = math.inf
        self.frames, self.values = np.zeros(0, np.int64), np.zeros(0)
        self._sample_peak: float | None = None
        self._stretches = None

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

    CACHE_BYTES = 64 << 20
    """Most memory `stretches` keeps between gain passes; beyond it (hours of loud audio) each pass refilters."""

    def stretches(self, sr: int, half: int, end: int):
        """For the loudness corrections of `_limited_sub_energies`: per stretch around the loud frames (each
        padded by the limiter's reach and the K-filter's settling time, clipped to [0, end)): (lo, hi, source
        frames (L, C) float64, their K-weighting (L, C) from `settle` frames of history (or the start), sub-block
        index per frame (L,)). Kept for the next pass while they fit in CACHE_BYTES."""
        key = (sr, half, end, self.threshold)
        if self._stretches is not None and self._stretches[0] == key:
            return self._stretches[1]
        spans = []
        if len(self.frames):
            pad = 2 * _limiter_reach(half) + k_weighting_settle(sr)
            first, last = _clusters(self.frames, 2 * pad)
            spans = [(max(0, a - pad), min(end, b + 1 + pad)) for a, b in zip(first, last) if max(0, a - pad) < end]
        if sum(hi - lo for lo, hi in spans) * self.source.shape[1] * 16 > self.CACHE_BYTES:
            return self._filtered(sr, end, spans)  # a generator: memory for one stretch at a time
        out = list(self._filtered(sr, end, spans))
        self._stretches = (key, out)
        return out

    def _filtered(self, sr: int, end: int, spans):
        from scipy.signal import sosfilt

        sos = k_weighting_sos(sr)
        bounds = _sub_block_bounds(sr, (10 * end + 4) // sr)
        for lo, hi in spans:
            xs = np.asarray(self.source[lo:hi], dtype=np.float64)
            kx = sosfilt(sos, xs, axis=0)  # exact (to 1e-6) from `settle` frames after lo, or from 0
            yield lo, hi, xs, kx, np.searchsorted(bounds, np.arange(lo, hi), side="right") - 1

    def _scan(self, threshold: float) -> None:
        source, n = self.source, len(self.source)
        frames, values = [], []
        for start in range(0, n, self.block):
            stop = min(n, start + self.block)
            lo, hi = max(0, start - _TP_CONTEXT), min(n, stop + _TP_CONTEXT)
            f, v = _envelope_over(np.asarray(source[lo:hi]), threshold)
            inside = (f >= start - lo) & (f < stop - lo)
            frames.append(f[inside] + lo)
            values.append(v[inside])
        self.frames = np.concatenate(frames) if frames else np.zeros(0, np.int64)
        self.values = np.concatenate(values) if values else np.zeros(0)
        self.threshold = threshold


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


def _smooth_ratio(r: np.ndarray, half: int) -> np.ndarray:
    """Allowed gains r (N,) -> smooth gain (N,) <= r: the sliding minimum over +-half frames, smoothed by two
    moving averages of half+1 frames (a triangle spanning +-half). Frames outside r count as silent (ratio 1).
    gain[n] depends on r within +-_limiter_reach(half) frames only."""
    pad = np.ones(2 * half)
    m = _sliding_min(np.concatenate([pad, r, pad]), 2 * half + 1)  # (N + 2*half,), centred on frames -half..N+half-1
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
    over, env = peaks.over(ceiling / gain)
    if not len(over):
        return over, np.zeros(0)
    reach = _limiter_reach(half)
    first, last = _clusters(over, 4 * reach)
    frames = _ranges(np.maximum(first - 2 * reach, 0), np.minimum(last + 2 * reach + 1, len(peaks.source)))
    r = np.ones(len(frames))
    r[np.searchsorted(frames, over)] = ceiling / (gain * env)
    return frames, _smooth_ratio(r, half)


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
                   block: int = BLOCK_FRAMES, *, peaks: PeakMap | None = None) -> Iterator[np.ndarray]:
    """Yield source * 10^(gain_db/20), true-peak limited to `true_peak_db`, in blocks of (<= block, C) float32.

    source: (N,) or (N, C) array, or any object with `ndim == 2`, `len()` and slicing along axis 0 (e.g.
    `mix.RawFrames` over a file); it is read block by block. peaks: the source's `PeakMap`, if one exists
    already (`solve_gain` fills one); else one is made (one more pass over the source).
    """
    source = _as_2d(source)
    g, ceiling, half = _limiter_setup(sr, gain_db, true_peak_db)
    frames, values = _limiter_runs(peaks if peaks is not None else PeakMap(source), g, ceiling, half)
    step = max(1, min(block, _WORK_FRAMES))
    k = 0
    for start in range(0, len(source), step):
        stop = min(len(source), start + step)
        out = np.asarray(source[start:stop], dtype=np.float64) * g
        j = int(np.searchsorted(frames, stop))
        if j > k:
            out[frames[k:j] - start] *= values[k:j, None]
            k = j
        yield out.astype(np.float32)


def _limited_sub_energies(source, sr: int, gain: float, ceiling: float, half: int, peaks: PeakMap,
                          sub: np.ndarray) -> np.ndarray:
    """Channel-summed K-weighted energy per complete sub-block (J,) of the limited signal, from `sub` (J,), those
    of the source itself, without filtering the whole signal again.

    K-weighting is linear: K(g x gain) = g K(x) - K(d) with d = g x (1 - gain), which is zero except where the
    limiter acts. So only there (plus the filter's settling time on each side) are K(x) and K(d) computed, and
    each sub-block's energy corrected by sum(K(d)^2 - 2 g K(x) K(d)). The settling time is where the filter's
    impulse response falls below 1e-6: the correction, itself a small part of the energy, is then exact to ~1e-6
    of itself (~1e-7 LU), far inside `solve_gain`'s tolerance. The stretches come from every frame in `peaks`
    (a superset of where any of the gain passes limits), so K(x) there is filtered once and kept in `peaks`.
    """
    from scipy.signal import sosfilt

    energies = gain * gain * sub
    frames, values = _limiter_runs(peaks, gain, ceiling, half)
    if not len(frames) or not len(sub):
        return energies
    sos, bounds = k_weighting_sos(sr), _sub_block_bounds(sr, len(sub))
    settle = k_weighting_settle(sr)
    for lo, hi, xs, kx, j in peaks.stretches(sr, half, int(bounds[-1])):
        a, b = np.searchsorted(frames, [lo, hi])
        if a == b:
            continue
        # K(d) is zero before each run of limited frames and rings out `settle` frames after it
        for first, last in zip(*_clusters(frames[a:b] - lo, settle)):
            stop = min(len(xs), last + 1 + settle)
            k0, k1 = np.searchsorted(frames, [first + lo, last + lo + 1])
            d = np.zeros((stop - first, xs.shape[1]))
            at = frames[k0:k1] - lo
            d[at - first] = xs[at] * (gain * (1.0 - values[k0:k1, None]))
            u = sosfilt(sos, d, axis=0)
            q = (u * (u - (2.0 * gain) * kx[first:stop])).sum(axis=1)  # (stop - first,)
            energies += np.bincount(j[first:stop], weights=q, minlength=len(sub))[: len(sub)]
    return energies


def solve_gain(source, sr: int, target_lufs: float = -16.0, true_peak_db: float = -1.0,
               measured_lufs: float | None = None, tolerance_lu: float = 0.05, max_passes: int = 4,
               *, meter: LoudnessMeter | None = None, peaks: PeakMap | None = None) -> float:
    """Gain in dB that brings `source` to `target_lufs` after true-peak limiting to `true_peak_db`.

    Starts from target - measured (measured is computed if not given). When the limiter has to act it
    lowers loudness a little, so the loudness of the limited result is computed again and the gain corrected,
    up to `max_passes` times. A correction filters only the stretches the limiter changes (see
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
