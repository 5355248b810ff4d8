"""What a fitted voice is scored on: how our rendering of the recording's words differs from the recording.

All parts are differentiable in the style vector (the network's own parameters stay frozen):

- `spectral`: L1 distance of log-mel spectra, frame by frame (rendering and recording are frame-aligned by
  forced durations), plus the distance of their long-term average spectra; both ignore overall gain.
- `pitch`: distance of the mean and spread of log F0 over voiced frames (the network's predicted F0 against the
  recording's YIN track).
- `rate`: log ratio of the predicted (soft, before rounding) phoneme frames to the aligned ones, per chunk.

The speaker judge (`voicegen.eval.speaker`) is deliberately not among them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..constants import SAMPLE_RATE
from ..eval.spectral import mel_filterbank

RESOLUTIONS = ((1024, 300), (2048, 600), (512, 150))
"""(n_fft, hop) of the log-mel spectra compared; hop 300 is the network's 80 Hz F0 rate."""
N_MELS = 80
SILENCE_NATS = 11.5
"""Frames more than this far below the loudest (in natural-log mel energy, ~50 dB) are silence and not scored."""


@dataclass
class Weights:
    """How much each part counts. Defaults chosen by measurement (benchmarks/RESULTS.md, "Voice fitting")."""

    spectral: float = 1.0
    average: float = 1.0
    pitch: float = 1.0
    rate: float = 0.5


_FILTERS: dict[int, torch.Tensor] = {}


def log_mel(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, N) audio at 24 kHz -> (B, N_MELS, N // hop + 1) natural-log mel power, differentiable."""
    if n_fft not in _FILTERS:
        _FILTERS[n_fft] = mel_filterbank(N_MELS, n_fft, SAMPLE_RATE, 40.0, 11000.0)
    window = torch.hann_window(n_fft, device=audio.device)
    spec = torch.stft(audio, n_fft, hop, window=window, center=True, return_complex=True)
    power = spec.real**2 + spec.imag**2
    return torch.log(_FILTERS[n_fft].to(audio.device) @ power + 1e-7)


def spectral_loss(rendered: torch.Tensor, recorded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rendered, recorded: (B, N) frame-aligned audio, lengths: (B,) valid samples
    -> (frame-wise log-mel L1, long-term average log-mel L1), both gain-invariant, averaged over resolutions."""
    frame_terms, average_terms = [], []
    for n_fft, hop in RESOLUTIONS:
        a, b = log_mel(rendered, n_fft, hop), log_mel(recorded, n_fft, hop)  # (B, M, T)
        t = torch.arange(a.shape[-1], device=a.device)
        valid = t[None, :] < (lengths[:, None] // hop)  # (B, T)
        energy = b.max(1).values  # (B, T)
        loudest = torch.where(valid, energy, torch.full_like(energy, -1e9)).max(1, keepdim=True).values
        active = (valid & (energy > loudest - SILENCE_NATS)).float()[:, None, :]  # (B, 1, T)
        count = active.sum(-1).clamp(min=1)  # (B, 1)
        diff = a - b
        gain = ((diff * active).sum((1, 2)) / (count[:, 0] * diff.shape[1])).detach()  # (B,) mean log gain
        diff = diff - gain[:, None, None]
        frame_terms.append(((diff.abs() * active).sum((1, 2)) / (count[:, 0] * diff.shape[1])).mean())
        average = (diff * active).sum(-1) / count  # (B, M): long-term spectrum difference
        average_terms.append(average.abs().mean())
    return torch.stack(frame_terms).mean(), torch.stack(average_terms).mean()


def pitch_loss(f0: torch.Tensor, target: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
    """f0: (B, T) predicted Hz at 80 Hz; target: (B, T) the recording's Hz; voiced: (B, T) bool where the
    recording is voiced (and inside the item) -> |difference of mean log F0| + |difference of its std|, over the
    frames voiced in both, averaged over items that have any."""
    both = voiced & (f0 > 10.0)
    terms = []
    for i in range(f0.shape[0]):
        if int(both[i].sum()) < 3:
            continue
        p, r = torch.log(f0[i][both[i]]), torch.log(target[i][both[i]])
        terms.append((p.mean() - r.mean()).abs() + (p.std() - r.std()).abs())
    return torch.stack(terms).mean() if terms else f0.sum() * 0.0


def rate_loss(soft: torch.Tensor, aligned: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """soft: (B, T) predicted frames per token before rounding; aligned: (B, T) frames from the alignment;
    tokens: (B, T) bool, the phonemes (not the wrapping pads) -> mean |log(sum soft / sum aligned)| per item."""
    predicted = (soft * tokens).sum(1)
    actual = (aligned.to(soft) * tokens).sum(1).clamp(min=1.0)
    return torch.log(predicted / actual).abs().mean()
