"""A voice print for tests: statistics of MFCCs over voiced frames, in plain numpy.

It shares no code with the engine or voicegen.eval (its own framing, mel filters and DCT), so a bug there cannot
hide a wrong voice here. Speaker identity lives in the spectral envelope (formants, brightness), which mean and
spread of the cepstrum summarize; two renderings of different sentences by one voice land close together, and a
blend of two voices lands between them.
"""

from __future__ import annotations

import numpy as np

RATE = 24000
FRAME, HOP, N_FFT, N_MELS, N_CEPS = 600, 240, 1024, 40, 20  # 25 ms frames, 10 ms hop


def _mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _filters(rate: int = RATE, lo: float = 60.0, hi: float = 8000.0) -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters equally spaced on the mel scale."""
    edges = 700.0 * (10 ** (np.linspace(_mel(lo), _mel(hi), N_MELS + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    out = np.zeros((N_MELS, len(bins)))
    for m in range(N_MELS):
        a, b, c = edges[m : m + 3]
        out[m] = np.clip(np.minimum((bins - a) / (b - a), (c - bins) / (c - b)), 0.0, None)
    return out


def mfcc(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """(frames, N_CEPS - 1) MFCCs (c1..c19) of the voiced frames (within 35 dB of the loudest frame)."""
    x = np.asarray(samples, np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n = 1 + max(0, (len(x) - FRAME) // HOP)
    frames = np.stack([x[i * HOP : i * HOP + FRAME] for i in range(n)]) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    energy = 10 * np.log10(power.sum(axis=1) + 1e-12)
    power = power[energy > energy.max() - 35.0]
    logmel = np.log(power @ _filters(rate).T + 1e-10)
    k = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (k[None, :] + 0.5) * np.arange(N_CEPS)[:, None])  # DCT-II basis
    return (logmel @ dct.T)[:, 1:]


def voiceprint(*clips: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Mean and standard deviation of the MFCCs of all clips together: one vector per voice."""
    c = np.concatenate([mfcc(clip, rate) for clip in clips])
    return np.concatenate([c.mean(axis=0), c.std(axis=0)])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))
