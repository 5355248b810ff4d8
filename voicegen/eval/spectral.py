"""Log-mel spectra and the distance between two renderings, for parity tests and quality reports."""

from __future__ import annotations

import numpy as np
import torch

from ..constants import SAMPLE_RATE


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular filters on the HTK mel scale: -> (n_mels, n_fft // 2 + 1)."""
    fmax = fmax or sample_rate / 2

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return torch.from_numpy(np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32))


def log_mel(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> np.ndarray:
    """(N,) audio -> (frames, n_mels) natural-log mel energies (floored at 1e-5)."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True).abs()
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ spec  # (n_mels, frames)
    return torch.log(mel.clamp(min=1e-5)).T.numpy()


def log_mel_distance(a: np.ndarray, b: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Mean absolute difference of log-mel spectra (nats) over the common length, counting only frames where
    either signal is above -60 dB of its peak (silence would otherwise dilute the figure)."""
    n = min(len(a), len(b))
    ma, mb = log_mel(a[:n], sample_rate), log_mel(b[:n], sample_rate)
    energy = np.maximum(ma.max(1), mb.max(1))
    active = energy > energy.max() - np.log(1e6)
    return float(np.abs(ma - mb)[active].mean())
