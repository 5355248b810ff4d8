"""Fundamental frequency (F0) of recorded speech, by YIN (de Cheveigné and Kawahara, 2002), in numpy.

Used by voice fitting (the recording's pitch contour is a target) and by tests that check pitch shifts. The
network predicts its own F0 at 80 Hz; `estimate_f0` reports at the same rate by default, frame k centred on
sample (k + 0.5) * sample_rate / 80, so the two line up frame for frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dsp import resample, to_mono

F0_RATE = 80
"""Frames per second of the network's F0 curve, and of `estimate_f0` by default."""

ANALYSIS_RATE = 16000
"""Audio is resampled to this rate before analysis (enough for F0 up to `fmax`, and cheaper)."""


@dataclass
class F0Track:
    """f0: (frames,) Hz, 0.0 where unvoiced; voiced: (frames,) bool; rate: frames per second."""

    f0: np.ndarray
    voiced: np.ndarray
    rate: float

    def median(self) -> float:
        """Median F0 of the voiced frames in Hz (nan if none is voiced)."""
        return float(np.median(self.f0[self.voiced])) if self.voiced.any() else float("nan")


def estimate_f0(samples: np.ndarray, sample_rate: int, *, rate: float = F0_RATE, fmin: float = 60.0,
                fmax: float = 500.0, threshold: float = 0.15, silence_db: float = 40.0) -> F0Track:
    """YIN pitch track of (N,) or (N, C) audio -> F0Track with ceil(N / sample_rate * rate) frames.

    A frame is voiced when the cumulative mean normalized difference dips below `threshold` at a lag inside
    [1/fmax, 1/fmin] and the frame is no more than `silence_db` below the loudest frame. Lags are refined by
    parabolic interpolation. Windows are 2/fmin long (33 ms at 60 Hz).
    """
    if not 0 < fmin < fmax:
        raise ValueError(f"need 0 < fmin < fmax; got fmin={fmin}, fmax={fmax}")
    x = resample(to_mono(samples).astype(np.float64), sample_rate, ANALYSIS_RATE).astype(np.float64)
    sr = ANALYSIS_RATE
    n_frames = int(np.ceil(len(to_mono(samples)) / sample_rate * rate))
    tau_min, tau_max = int(sr / fmax), int(np.ceil(sr / fmin))
    width = tau_max  # integration window W
    centres = ((np.arange(n_frames) + 0.5) * sr / rate).astype(int)
    pad = width + tau_max
    xp = np.pad(x, (pad, pad + width + tau_max))
    starts = centres - width // 2 + pad
    idx = starts[:, None] + np.arange(width + tau_max)[None, :]  # (frames, W + tau_max)
    frames = xp[idx]
    frames = frames - frames[:, :width].mean(axis=1, keepdims=True)
    # d(tau) = sum_j (x_j - x_{j+tau})^2 over j < W = e0 + e_tau - 2 r(tau)
    n_fft = 1 << int(np.ceil(np.log2(2 * (width + tau_max))))
    spec_full = np.fft.rfft(frames, n_fft)
    spec_head = np.fft.rfft(frames[:, :width], n_fft)
    r = np.fft.irfft(np.conj(spec_head) * spec_full, n_fft)[:, : tau_max + 1]  # (frames, tau_max + 1)
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, width : width + 1]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + width] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    f0 = np.zeros(n_frames)
    voiced = np.zeros(n_frames, dtype=bool)
    energy = e0[:, 0] / width
    loud = energy > energy.max() * 10 ** (-silence_db / 10) if energy.size and energy.max() > 0 else np.zeros(n_frames, bool)
    window = cmnd[:, tau_min : tau_max]
    below = window < threshold
    for k in np.flatnonzero(loud & below.any(axis=1)):
        t = int(np.argmax(below[k]))
        while t + 1 < window.shape[1] and window[k, t + 1] < window[k, t]:  # walk down to the local minimum
            t += 1
        tau = t + tau_min
        if 0 < tau < tau_max:
            a, b, c = cmnd[k, tau - 1], cmnd[k, tau], cmnd[k, tau + 1]
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if denom > 0 else 0.0
            tau = tau + float(np.clip(shift, -1, 1))
        f0[k], voiced[k] = sr / tau, True
    return F0Track(f0, voiced, float(rate))
