"""The harmonic-plus-noise excitation that the generator shapes into speech (neural source filter)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...constants import SAMPLE_RATE


class SourceModuleHnNSF(nn.Module):
    """F0 at 80 Hz -> a one-channel excitation at 24 kHz: the fundamental and 8 harmonics where voiced, noise
    where not, merged by a learned linear layer and tanh.

    Differences from the reference implementation, both deliberate:
    - Phase is accumulated in float64 and reduced modulo one cycle before it is interpolated, so long items keep
      their harmonics in tune (the float32 running phase of the reference drifts by tenths of a radian over a
      few seconds). Rounding aside, the result is the same function.
    - The reference draws 9 noise channels and then mixes them with `l_linear`; a linear mix of independent unit
      Gaussians is one Gaussian with standard deviation ||w||, so one channel `noise` (B, N) suffices. The
      reference's random initial phases are omitted: its own x1/300 linear resampling discards them.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        upsample: int = 300,
        harmonics: int = 8,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 10.0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.upsample = upsample
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold
        self.register_buffer("multiples", torch.arange(1, harmonics + 2, dtype=torch.float32), persistent=False)
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def forward(self, f0: torch.Tensor, lengths: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """f0: (B, F) Hz, lengths: (B,) valid frames, noise: (B, F * upsample) unit Gaussian or None (silent)
        -> (B, F * upsample) excitation in (-1, 1); samples past an item's end are unspecified."""
        batch, frames = f0.shape
        up = self.upsample
        # cycles advanced per sample, per harmonic; constant within a frame
        rad = torch.frac(f0[..., None].double() * self.multiples.double() / self.sample_rate)  # (B, F, H)
        cycles = torch.cumsum(rad, dim=1) * up  # running phase at each frame centre, in cycles
        base = torch.frac(cycles).float()  # (B, F, H)
        # phase gained from one frame centre to the next; none past an item's last frame (edge clamp)
        t = torch.arange(frames, device=f0.device)
        step = torch.roll(rad.float() * up, -1, dims=1) * (t[None, :] < (lengths - 1)[:, None])[..., None]
        # linear interpolation frame -> sample (half-pixel centres, clamped at the start), as F.interpolate does
        n = torch.arange(frames * up, device=f0.device, dtype=torch.float32)
        src = ((n + 0.5) / up - 0.5).clamp(min=0)
        i0 = src.floor().long()
        w = (src - i0)[None, :, None]  # (1, N, 1)
        phase = base.index_select(1, i0) + w * step.index_select(1, i0)  # (B, N, H) cycles
        voiced = (f0.repeat_interleave(up, dim=1) > self.voiced_threshold).float()[..., None]  # (B, N, 1)
        sines = torch.sin(2 * math.pi * phase) * self.sine_amp * voiced
        merged = self.l_linear(sines)[..., 0]  # (B, N)
        if noise is not None:
            amp = voiced[..., 0] * self.noise_std + (1 - voiced[..., 0]) * self.sine_amp / 3
            merged = merged + amp * self.l_linear.weight.norm() * noise
        return torch.tanh(merged)
