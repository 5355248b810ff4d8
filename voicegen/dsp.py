"""Small signal helpers in numpy: resampling, oversampling, fades, constant-power panning, channel layout.

Arrays are float with time on axis 0: (N,) for mono or (N, C) for C channels. Nothing here allocates more
than a few copies of its input, so callers that need bounded memory pass blocks.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd, pi

import numpy as np

RESAMPLE_ZEROS = 16
"""Zero crossings of the windowed-sinc kernel on each side (kernel length ~ 2 * 16 input samples)."""

RESAMPLE_ROLLOFF = 0.94
"""Cutoff as a fraction of the lower Nyquist frequency when resampling (leaves room for the transition band)."""

KAISER_BETA = 8.6
"""Kaiser window shape: ~-90 dB stop band."""


def _kaiser(t: np.ndarray, half_width: float, beta: float = KAISER_BETA) -> np.ndarray:
    """Kaiser window evaluated at arbitrary offsets t in [-half_width, half_width] (0 outside)."""
    u = np.clip(1.0 - (t / half_width) ** 2, 0.0, None)
    return np.where(np.abs(t) <= half_width, np.i0(beta * np.sqrt(u)) / np.i0(beta), 0.0)


@lru_cache(maxsize=64)
def _polyphase_taps(up: int, down: int, rolloff: float, zeros: int) -> tuple[tuple[int, np.ndarray], ...]:
    """Per output phase r in [0, up): (first input offset q0, taps h(r*down - q*up) for q = q0, q0+1, ...).

    The prototype lowpass lives on the upsampled grid (rate = input rate * up): a sinc with cutoff
    `rolloff` times the lower of the two Nyquist frequencies under a Kaiser window, each phase scaled to unit
    gain at DC.
    """
    two_fc = rolloff / max(up, down)  # cutoff in cycles per upsampled sample, times 2
    half = zeros / two_fc  # kernel half width in upsampled samples
    out = []
    for r in range(up):
        q0 = int(np.ceil((r * down - half) / up))
        q1 = int(np.floor((r * down + half) / up))
        t = r * down - np.arange(q0, q1 + 1) * up
        taps = up * two_fc * np.sinc(two_fc * t) * _kaiser(t, half)
        out.append((q0, taps / taps.sum()))  # unit gain at DC for every phase (the window leaves ~1e-5 off)
    return tuple(out)


def _polyphase(x: np.ndarray, up: int, down: int, rolloff: float, zeros: int) -> np.ndarray:
    """Rational resampling by up/down along axis 0 with zero padding outside x: (N, C) -> (ceil(N*up/down), C)."""
    n_in = x.shape[0]
    n_out = -(-n_in * up // down)
    y = np.zeros((n_out,) + x.shape[1:], dtype=np.float64)
    phases = _polyphase_taps(up, down, rolloff, zeros)
    pad_left = max(0, -min(q0 for q0, _ in phases))
    pad_right = max(q0 + len(taps) for q0, taps in phases) + down
    xp = np.zeros((pad_left + n_in + pad_right,) + x.shape[1:], dtype=np.float64)
    xp[pad_left : pad_left + n_in] = x
    for r, (q0, taps) in enumerate(phases):
        count = -(-(n_out - r) // up)  # outputs n = r + j*up, j < count
        if count <= 0:
            continue
        acc = y[r::up]  # view: (count, C)
        if down == 1:  # a plain FIR per phase: np.correlate runs it in C
            first = pad_left + q0
            for c in range(xp.shape[1] if xp.ndim == 2 else 0):
                acc[:, c] = np.correlate(xp[first : first + count + len(taps) - 1, c], taps, "valid")
            if xp.ndim == 1:
                acc[:] = np.correlate(xp[first : first + count + len(taps) - 1], taps, "valid")
            continue
        for k, tap in enumerate(taps):
            start = pad_left + q0 + k  # input index of output j is j*down + q
            acc += tap * xp[start : start + (count - 1) * down + 1 : down]
    return y


def resample(x: np.ndarray, sr_in: int, sr_out: int, *, zeros: int = RESAMPLE_ZEROS,
             rolloff: float = RESAMPLE_ROLLOFF) -> np.ndarray:
    """Resample along axis 0 with a polyphase Kaiser-windowed sinc filter: (N, ...) -> (ceil(N*sr_out/sr_in), ...).

    The signal is taken as zero outside its ends. Frequencies above `rolloff` times the lower Nyquist
    frequency are removed (anti-aliasing when downsampling, anti-imaging when upsampling). Returns float32.
    """
    x = np.asarray(x)
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return x.astype(np.float32, copy=True)
    g = gcd(int(sr_in), int(sr_out))
    return _polyphase(x, sr_out // g, sr_in // g, rolloff, zeros).astype(np.float32)


def oversample(x: np.ndarray, factor: int = 4, *, zeros: int = 12) -> np.ndarray:
    """Band-limited interpolation by an integer factor: (N, ...) -> (N*factor, ...), float64.

    The kernel is a windowed sinc at the input Nyquist frequency, so every `factor`-th output sample equals
    the input exactly and the others are the inter-sample values (used for true-peak measurement).
    """
    return _polyphase(np.asarray(x, dtype=np.float64), factor, 1, 1.0, zeros)


def interpolation_phases(factor: int, zeros: int = 12) -> tuple[tuple[int, np.ndarray], ...]:
    """The filter behind `oversample`, phase by phase: for r in [0, factor), (q0, taps) such that
    oversample(x, factor)[n * factor + r] = sum_k taps[k] * x[n + q0 + k] (zero outside x). Phase 0 is the
    identity up to rounding (taps ~1e-18 off the centre)."""
    return _polyphase_taps(factor, 1, 1.0, zeros)


def ramp(n: int) -> np.ndarray:
    """Raised-cosine ramp rising from ~0 to ~1 over n samples (strictly inside (0, 1)); shape (n,)."""
    return np.sin(0.5 * pi * np.arange(1, n + 1) / (n + 1)) ** 2


def fade(x: np.ndarray, fade_in: int = 0, fade_out: int = 0) -> np.ndarray:
    """Copy of x (float32) with raised-cosine fades of the given lengths in samples at its start and end.

    Fades longer than half the signal are shortened to half, so short sounds still start and end at zero.
    """
    return fade_inplace(np.array(x, dtype=np.float32, copy=True), fade_in, fade_out)


def fade_inplace(y: np.ndarray, fade_in: int = 0, fade_out: int = 0) -> np.ndarray:
    """`fade` applied to y itself (a float array, (N,) or (N, C)); returns y."""
    n = len(y)
    shape = (-1,) + (1,) * (y.ndim - 1)
    fi, fo = min(fade_in, n // 2), min(fade_out, n // 2)
    if fi:
        y[:fi] *= ramp(fi).reshape(shape)
    if fo:
        y[n - fo :] *= ramp(fo)[::-1].reshape(shape)
    return y


def pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power stereo placement: (N,) -> (N, 2). position -1 is hard left, 0 centre, +1 hard right.

    Left and right gains are cos/sin of (position + 1) * pi/4, so L^2 + R^2 = 1 and the loudness of the
    pair equals the loudness of the mono input wherever it is placed.
    """
    return place(mono, pan_gains(position))


def place(mono: np.ndarray, gains: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """mono (N,) on C channels with constant gains (C,): (N, C) float32, equal to mono[:, None] * gains (float32);
    written into `out` ((N, C) float32, C-contiguous rows) when given.

    numpy's broadcast over a 2-wide last axis runs a loop per row (8x slower than one long loop). Two channels are
    one complex multiply instead: a row (left, right) is one complex64, and mono * (g0 + i g1) has real part
    mono * g0 - 0 * g1 and imaginary part mono * g1 + 0 * g0, the same floats (2x faster than a strided pass per
    channel, which is what other channel counts get)."""
    mono = np.asarray(mono, dtype=np.float32).reshape(-1)
    gains = np.asarray(gains, dtype=np.float32).reshape(-1)
    if out is None:
        out = np.empty((len(mono), len(gains)), np.float32)
    if len(gains) == 2 and out.flags.c_contiguous and np.all(np.isfinite(gains)):
        np.multiply(mono, np.complex64(complex(gains[0], gains[1])), out=out.reshape(-1).view(np.complex64))
        return out
    for c, g in enumerate(gains):
        np.multiply(mono, g, out=out[:, c])
    return out


def pan_gains(position: float) -> np.ndarray:
    """The (left, right) float32 gains of `pan` at `position` in [-1, 1]: (2,)."""
    if not -1.0 <= position <= 1.0:
        raise ValueError(f"pan must be in [-1, 1], got {position}")
    theta = (position + 1.0) * pi / 4
    return np.array([np.cos(theta), np.sin(theta)], dtype=np.float32)


def to_mono(x: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) -> (N,) float32 by averaging channels (a view of x when it is float32 with one channel)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.shape[1] == 1:
        return x[:, 0]
    return x.mean(axis=1, dtype=np.float32)


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N,) or (N, C) -> (N, channels): average to mono, or copy mono to every channel."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[1] == channels:
        return x
    mono = to_mono(x)
    return np.repeat(mono[:, None], channels, axis=1)
