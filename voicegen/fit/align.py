"""Aligning a rendering to a recording of the same words: features, dynamic time warping, token durations.

Everything runs at the network's duration-frame rate (40 Hz: one frame = SAMPLES_PER_FRAME samples at 24 kHz),
so a path through the cost matrix pairs rendered frames, whose tokens are known from the rendering's durations,
with recorded frames.
"""

from __future__ import annotations

import numpy as np
import torch

from ..constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..eval.spectral import mel_filterbank

N_FFT = 1024
N_MELS = 40
N_CEPS = 20


def frame_features(samples: np.ndarray) -> np.ndarray:
    """(N,) 24 kHz audio -> (ceil(N / 600), 20) cepstra, one per 40 Hz frame (frame k centred on sample 600k + 300).

    Mel-frequency cepstra without c0, mean-normalized over the clip: they follow what is said more than who says
    it or how loud, which is what an alignment of two speakers needs.
    """
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    frames = -(-len(x) // SAMPLES_PER_FRAME)
    left = N_FFT // 2 - SAMPLES_PER_FRAME // 2
    x = torch.nn.functional.pad(x, (left, frames * SAMPLES_PER_FRAME - len(x) + N_FFT))
    spec = torch.stft(x, N_FFT, SAMPLES_PER_FRAME, window=torch.hann_window(N_FFT), center=False, return_complex=True)
    mel = mel_filterbank(N_MELS, N_FFT, SAMPLE_RATE, 50.0, 8000.0) @ spec.abs()[:, :frames] ** 2
    logmel = torch.log(mel.clamp(min=1e-8))  # (N_MELS, frames)
    k = torch.arange(N_MELS, dtype=torch.float32)
    dct = torch.cos(torch.pi / N_MELS * (k[None, :] + 0.5) * torch.arange(1, N_CEPS + 1, dtype=torch.float32)[:, None])
    ceps = (dct @ logmel).T.numpy()  # (frames, N_CEPS)
    return ceps - ceps.mean(axis=0, keepdims=True)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dynamic time warping of feature sequences a (N, D) and b (M, D), Euclidean frame cost, steps (1,0), (0,1),
    (1,1), from (0, 0) to (N-1, M-1) -> path (L, 2) int of (i, j) pairs, both non-decreasing.

    Computed along anti-diagonals (each a vector operation), O(N*M) memory for the back-pointers.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("cannot align an empty sequence")
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    cost = np.sqrt(np.maximum(sq, 0.0))  # (N, M)
    acc = np.full((n, m), np.inf)
    move = np.zeros((n, m), dtype=np.int8)  # 0 diagonal, 1 from above (i-1), 2 from the left (j-1)
    acc[0, 0] = cost[0, 0]
    for s in range(1, n + m - 1):
        i = np.arange(max(0, s - m + 1), min(n, s + 1))
        j = s - i
        diag = np.where((i > 0) & (j > 0), acc[np.maximum(i - 1, 0), np.maximum(j - 1, 0)], np.inf)
        up = np.where(i > 0, acc[np.maximum(i - 1, 0), j], np.inf)
        left = np.where(j > 0, acc[i, np.maximum(j - 1, 0)], np.inf)
        options = np.stack([diag, up, left])
        best = options.argmin(0)
        acc[i, j] = cost[i, j] + options[best, np.arange(len(i))]
        move[i, j] = best
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i or j:
        step = move[i, j]
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
        path.append((i, j))
    return np.array(path[::-1])


def map_boundaries(path: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Rendered frame indices (K,) -> the first recorded frame the path pairs with each (K,), non-decreasing.

    A boundary at or past the rendering's end maps past the recording's end (its last frame + 1)."""
    n = int(path[:, 0].max()) + 1
    first = np.full(n + 1, int(path[:, 1].max()) + 1)
    for i, j in path[::-1]:
        first[i] = j  # the smallest j for each i, since j is non-decreasing along the path
    out = first[np.clip(boundaries, 0, n)]
    return np.maximum.accumulate(out)
