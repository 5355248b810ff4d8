"""The decoder: aligned phoneme features, pitch and energy -> 80 Hz features for the generator -> audio."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import AdainResBlk1d, Conv1d, lengths_to_mask
from .generator import Generator


class Decoder(nn.Module):
    def __init__(self, dim_in: int = 512, style_dim: int = 128, hidden: int = 1024, residual: int = 64, **generator):
        super().__init__()
        cat = hidden + 2 + residual  # features, F0, N and the phoneme-feature residual
        self.encode = AdainResBlk1d(dim_in + 2, hidden, style_dim)
        self.decode = nn.ModuleList(
            [
                AdainResBlk1d(cat, hidden, style_dim),
                AdainResBlk1d(cat, hidden, style_dim),
                AdainResBlk1d(cat, hidden, style_dim),
                AdainResBlk1d(cat, dim_in, style_dim, upsample=True),
            ]
        )
        self.F0_conv = Conv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = Conv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = nn.Sequential(Conv1d(dim_in, residual, 1))
        self.generator = Generator(style_dim=style_dim, **generator)

    def forward(
        self,
        asr: torch.Tensor,
        f0: torch.Tensor,
        n: torch.Tensor,
        s: torch.Tensor,
        lengths: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """asr: (B, 512, F) aligned features at 40 Hz, f0 and n: (B, 2F) at 80 Hz (zero on padding),
        s: (B, 128) timbre style, lengths: (B,) valid 40 Hz frames, noise: (B, 600F) unit Gaussian or None
        -> audio (B, 600F), zero past each item's end."""
        frames = asr.shape[-1]
        mask, mask2 = lengths_to_mask(lengths, frames), lengths_to_mask(2 * lengths, 2 * frames)
        f0_down = self.F0_conv(f0[:, None]) * mask  # (B, 1, F)
        n_down = self.N_conv(n[:, None]) * mask
        x = self.encode(torch.cat([asr, f0_down, n_down], dim=1), s, mask, mask)
        asr_res = self.asr_res(asr)
        for block in self.decode:
            x = torch.cat([x, asr_res, f0_down, n_down], dim=1)
            x = block(x, s, mask, mask2 if block.upsample else mask)
        return self.generator(x, s, f0, 2 * lengths, noise)
