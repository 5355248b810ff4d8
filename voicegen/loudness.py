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
def _k_weighting_impulse_response(sr: int) -> np.ndarray:
    """The cascade's impulse response, run until it has decayed below 1e-13 (both biquads are stable)."""
    (b1, a1), (b2, a2) = k_weighting_filters(sr)
    h: list[float] = []
    x1 = x2 = y1 = y2 = z1 = z2 = 0.0  # stage 1 input/output history, stage 2 output history
    n = 0
    while n < 64 * sr:
        x0 = 1.0 if n == 0 else 0.0
        y0 = b1[0] * x0 + b1[1] * x1 + b1[2] * x2 - a1[1] * y1 - a1[2] * y2
        z0 = b2[0] * y0 + b2[1] * y1 + b2[2] * y2 - a2[1] * z1 - a2[2] * z2
        h.append(z0)
        x2, x1, y2, y1, z2, z1 = x1, x0, y1, y0, z1, z0
        n += 1
        if n > 8 and max(abs(y0), abs(y1), abs(z0), abs(z1)) < 1e-13:
            break
    return np.array(h)


class _KWeighting:
    """Streaming K-weighting: the IIR cascade applied as its (exactly decayed) FIR by FFT overlap-save."""

    def __init__(self, sr: int, channels: int):
        self.h = _k_weighting_impulse_response(sr)
        self.history = np.zeros((len(self.h) - 1, channels))
        self._spectra: dict[int, np.ndarray] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (n, C) -> (n, C) K-weighted, continuing from the previous call."""
        m = len(self.h) - 1
        buf = np.concatenate([self.history, x], axis=0)
        nfft = 1 << (len(buf) - 1).bit_length()
        if nfft not in self._spectra:
            self._spectra[nfft] = np.fft.rfft(self.h, nfft)[:, None]
        y = np.fft.irfft(np.fft.rfft(buf, nfft, axis=0) * self._spectra[nfft], nfft, axis=0)[m : len(buf)]
        self.history = buf[len(buf) - m :]
        return y


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) of a signal fed in pieces of any length.

    Keeps one energy per channel per 100 ms sub-block (36 000 numbers for an hour), so memory does not
    grow with the audio; 400 ms gating blocks with 75 % overlap are sums of four consecutive sub-blocks.
    """

    def __init__(self, sr: int, channels: int = 1):
        self.sr, self.channels = sr, channels
        self._filter = _KWeighting(sr, channels)
        self._sub_energy: list[np.ndarray] = []  # (C,) sum of squares per complete sub-block
        self._partial = np.zeros(channels)
        self._frames = 0  # frames seen so far

    def _boundary(self, j: int) -> int:
        """First frame of sub-block j (100 ms steps, rounded for rates not divisible by 10)."""
        return (j * self.sr + 5) // 10

    def add(self, x: np.ndarray) -> None:
        """Append samples: (n,) for a mono meter or (n, C)."""
        x = _as_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.channels:
            raise ValueError(f"meter has {self.channels} channel(s), got {x.shape[1]}")
        for start in range(0, len(x), BLOCK_FRAMES):
            self._add(self._filter(x[start : start + BLOCK_FRAMES]))

    def _add(self, z: np.ndarray) -> None:
        sq = z * z
        pos, end = self._frames, self._frames + len(z)
        while True:
            j = len(self._sub_energy)
            stop = self._boundary(j + 1)
            if stop > end:
                self._partial += sq[pos - self._frames :].sum(axis=0)
                break
            self._sub_energy.append(self._partial + sq[pos - self._frames : stop - self._frames].sum(axis=0))
            self._partial = np.zeros(self.channels)
            pos = stop
        self._frames = end

    def block_energies(self) -> np.ndarray:
        """Mean square per 400 ms gating block, summed over channels (weights 1): shape (blocks,)."""
        if len(self._sub_energy) < SUB_BLOCKS_PER_BLOCK:
            return np.zeros(0)
        sub = np.asarray(self._sub_energy).sum(axis=1)
        sums = np.convolve(sub, np.ones(SUB_BLOCKS_PER_BLOCK), mode="valid")
        j = np.arange(len(sums))
        lengths = np.array([self._boundary(i + SUB_BLOCKS_PER_BLOCK) - self._boundary(i) for i in j])
        return sums / lengths

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS, or -inf when no block is above the absolute gate."""
        z = self.block_energies()
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10.0 * np.log10(z)
        z = z[loud > ABSOLUTE_GATE_LUFS]
        if len(z) == 0:
            return -math.inf
        relative_gate = -0.691 + 10.0 * math.log10(z.mean()) + RELATIVE_GATE_LU
        with np.errstate(divide="ignore"):
            z = z[-0.691 + 10.0 * np.log10(z) > relative_gate]
        return -0.691 + 10.0 * math.log10(z.mean())


def integrated_loudness(x: np.ndarray, sr: int) -> float:
    """Integrated loudness of x ((N,) or (N, C)) in LUFS; -inf for silence or audio shorter than 400 ms."""
    x = _as_2d(x)
    meter = LoudnessMeter(sr, x.shape[1])
    meter.add(x)
    return meter.integrated()


def _true_peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per-frame true peak: max over channels of |x| at the frame and its 3 inter-sample points; (N, C) -> (N,)."""
    up = np.abs(dsp.oversample(x, TRUE_PEAK_OVERSAMPLING))  # (4N, C)
    env = up[:, 0].copy()  # elementwise maxima: numpy's reductions over tiny axes are slow
    for c in range(1, up.shape[1]):
        np.maximum(env, up[:, c], out=env)
    out = env[0::TRUE_PEAK_OVERSAMPLING].copy()  # (N,): max over each frame's oversampled points
    for k in range(1, TRUE_PEAK_OVERSAMPLING):
        np.maximum(out, env[k::TRUE_PEAK_OVERSAMPLING], out=out)
    return out


_TP_CONTEXT = 16  # frames beyond a block that influence its oversampled values (oversampler half width + 1)


def true_peak(x: np.ndarray, sr: int | None = None) -> float:
    """Largest absolute value of x after 4x band-limited oversampling (linear; sr is accepted for symmetry)."""
    x = _as_2d(x)
    peak = 0.0
    for start in range(0, len(x), BLOCK_FRAMES):
        lo, hi = max(0, start - _TP_CONTEXT), min(len(x), start + BLOCK_FRAMES + _TP_CONTEXT)
        env = _true_peak_envelope(np.asarray(x[lo:hi], dtype=np.float64))
        peak = max(peak, float(env[start - lo : min(len(x), start + BLOCK_FRAMES) - lo].max(initial=0.0)))
    return peak


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


def _limiter_gain(x: np.ndarray, ceiling: float, half: int) -> np.ndarray:
    """Smooth gain (N,) <= 1 such that gain[n] * true_peak_envelope[n] <= ceiling for every frame; x: (N, C).

    r = ceiling / envelope is the largest gain each frame allows; its sliding minimum over +-half frames,
    smoothed by two moving averages of half+1 frames (a triangle spanning +-half), is an average of values
    that are each <= r[n], hence <= r[n] itself: the limiter looks `half` frames ahead and ramps smoothly.
    Frames outside x count as silent (gain 1).
    """
    env = _true_peak_envelope(x)
    if env.max(initial=0.0) <= ceiling:
        return np.ones(len(x))
    r = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    pad = np.ones(2 * half)
    m = _sliding_min(np.concatenate([pad, r, pad]), 2 * half + 1)  # (N + 2*half,), centred on frames -half..N+half-1
    w = half // 2 * 2 + 1  # odd box width; two boxes span +-(w - 1)
    smooth = _moving_average(_moving_average(m, w), w)  # centred on frames -half + (w-1) ..
    offset = half - (w - 1)
    return np.minimum(smooth[offset : offset + len(x)], 1.0)


def limited_blocks(source, sr: int, gain_db: float, true_peak_db: float = -1.0,
                   block: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Yield source * 10^(gain_db/20), true-peak limited to `true_peak_db`, in blocks of (<= block, C) float32.

    source: (N,) or (N, C) array, or any object with `ndim == 2`, `len()` and slicing along axis 0 (e.g.
    `mix.RawFrames` over a file); only one block plus context is read at a time.
    """
    source = _as_2d(source)
    n = len(source)
    g = 10.0 ** (gain_db / 20.0)
    ceiling = 10.0 ** ((true_peak_db - LIMITER_MARGIN_DB) / 20.0)
    half = max(2, int(round(LIMITER_HALF_WINDOW_S * sr)))
    context = 2 * half + _TP_CONTEXT
    for start in range(0, n, block):
        stop = min(n, start + block)
        lo, hi = max(0, start - context), min(n, stop + context)
        seg = np.asarray(source[lo:hi], dtype=np.float64) * g
        gain = _limiter_gain(seg, ceiling, half)
        yield (seg * gain[:, None])[start - lo : stop - lo].astype(np.float32)


def solve_gain(source, sr: int, target_lufs: float = -16.0, true_peak_db: float = -1.0,
               measured_lufs: float | None = None, tolerance_lu: float = 0.05, max_passes: int = 4) -> float:
    """Gain in dB that brings `source` to `target_lufs` after true-peak limiting to `true_peak_db`.

    Starts from target - measured (measured is computed if not given). When the limiter has to act it
    lowers loudness a little, so the limited result is measured again and the gain corrected, up to
    `max_passes` passes over the source. Returns 0 for silence (nothing to normalize).
    """
    source = _as_2d(source)
    if measured_lufs is None:
        measured_lufs = integrated_loudness(source, sr)
    if not math.isfinite(measured_lufs):
        return 0.0
    gain = target_lufs - measured_lufs
    ceiling_db = true_peak_db - LIMITER_MARGIN_DB
    if true_peak_dbtp(source, sr) + gain <= ceiling_db:
        return gain  # the limiter will not act: loudness scales exactly with the gain
    for _ in range(max_passes):
        meter = LoudnessMeter(sr, source.shape[1])
        for out in limited_blocks(source, sr, gain, true_peak_db):
            meter.add(out)
        error = target_lufs - meter.integrated()
        if abs(error) <= tolerance_lu:
            break
        gain += error
    return gain


def normalize_loudness(x: np.ndarray, sr: int, target_lufs: float = -16.0, true_peak_db: float = -1.0) -> np.ndarray:
    """x ((N,) or (N, C)) gained to `target_lufs` integrated with true peak <= `true_peak_db`; float32, same shape.

    Loud peaks are handled by a look-ahead true-peak limiter rather than by lowering the whole signal, so
    the loudness target holds. Silence is returned unchanged.
    """
    x = np.asarray(x)
    gain = solve_gain(x, sr, target_lufs, true_peak_db)
    blocks = list(limited_blocks(x, sr, gain, true_peak_db))
    out = np.concatenate(blocks) if blocks else np.zeros((0, _as_2d(x).shape[1]), np.float32)
    return out.reshape(x.shape)
