"""Short-time Fourier transforms of padded batches, exact per item.

torch.stft reflects at the end of the whole (padded) tensor and torch.istft normalizes by the window envelope of
all frames; in a padded batch both would let padding leak into the last milliseconds of shorter items. These
versions reflect at each item's own end and normalize by each item's own envelope.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hann_window(n_fft: int, device=None) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device=device)


def reflect_index(length: torch.Tensor, total: int, pad: int) -> torch.Tensor:
    """Indices that reflect-pad each item by `pad` on both sides.

    length: (B,) valid samples per item -> (B, total + 2 * pad) indices into the unpadded (B, total) signal.
    Positions beyond an item's padded end are clamped into range (their values are masked later).
    """
    n = torch.arange(-pad, total + pad, device=length.device)[None, :]  # (1, total + 2 pad)
    last = (length - 1)[:, None]
    idx = n.abs()
    idx = torch.where(idx > last, 2 * last - idx, idx)
    return idx.clamp(0, total - 1)


def stft(x: torch.Tensor, length: torch.Tensor, n_fft: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centered STFT with a periodic Hann window, reflect-padded at each item's end.

    x: (B, N) float32, length: (B,) valid samples -> (magnitude, phase), each (B, n_fft // 2 + 1, N // hop + 1).
    Frames that start past an item's end hold garbage; the caller masks them.
    """
    padded = torch.gather(x, 1, reflect_index(length, x.shape[1], n_fft // 2))  # (B, N + n_fft)
    frames = padded.unfold(-1, n_fft, hop) * hann_window(n_fft, x.device)  # (B, frames, n_fft)
    spec = torch.fft.rfft(frames, dim=-1).transpose(1, 2)  # (B, bins, frames)
    return spec.abs(), torch.angle(spec)


def istft(
    magnitude: torch.Tensor, phase: torch.Tensor, frame_mask: torch.Tensor, n_fft: int, hop: int
) -> torch.Tensor:
    """Inverse of a centered STFT, normalized by each item's own window envelope.

    magnitude, phase: (B, n_fft // 2 + 1, frames); frame_mask: (B, 1, frames) float, 1 on an item's frames
    -> (B, (frames - 1) * hop) samples. Matches torch.istft(center=True) for an unpadded item.
    """
    window = hann_window(n_fft, magnitude.device)
    spec = torch.polar(magnitude * frame_mask, phase)
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]  # (B, n_fft, frames)
    eye = torch.eye(n_fft, device=frames.device, dtype=frames.dtype)[:, None, :]  # (n_fft, 1, n_fft)
    signal = F.conv_transpose1d(frames, eye, stride=hop)[:, 0]  # overlap-add: (B, (frames - 1) * hop + n_fft)
    envelope = F.conv_transpose1d(frame_mask, (window * window)[None, None, :], stride=hop)[:, 0]
    signal = torch.where(envelope > 1e-11, signal / envelope.clamp(min=1e-11), torch.zeros_like(signal))
    half = n_fft // 2
    return signal[:, half : signal.shape[1] - half]
