"""The prosody predictor: phoneme durations, then pitch (F0) and energy (N) curves at 80 Hz."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import AdaLayerNorm, AdainResBlk1d, BiLSTM, Conv1d


class DurationEncoder(nn.Module):
    """Three BiLSTM + AdaLayerNorm layers over phoneme features, with the style appended to every step.

    `lstms` alternates BiLSTM (even indices) and AdaLayerNorm (odd indices), matching checkpoint names.
    """

    def __init__(self, style_dim: int, d_model: int, nlayers: int):
        super().__init__()
        self.lstms = nn.ModuleList()
        for _ in range(nlayers):
            self.lstms.append(BiLSTM(d_model + style_dim, d_model // 2))
            self.lstms.append(AdaLayerNorm(style_dim, d_model))

    def forward(self, x: torch.Tensor, s: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), s: (B, S), lengths: (B,) on CPU, mask: (B, T, 1) float -> (B, T, D + S)."""
        style = s[:, None, :].expand(-1, x.shape[1], -1)  # (B, T, S)
        x = torch.cat([x, style], dim=-1) * mask
        for lstm, norm in zip(self.lstms[0::2], self.lstms[1::2]):
            x = lstm(x, lengths)  # (B, T, D)
            x = torch.cat([norm(x, s), style], dim=-1) * mask
        return x


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim: int = 128, d_hid: int = 512, nlayers: int = 3, max_dur: int = 50):
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, nlayers)
        self.lstm = BiLSTM(d_hid + style_dim, d_hid // 2)
        self.duration_proj = nn.Module()
        self.duration_proj.linear_layer = nn.Linear(d_hid, max_dur)
        self.shared = BiLSTM(d_hid + style_dim, d_hid // 2)
        self.F0 = nn.ModuleList(
            [
                AdainResBlk1d(d_hid, d_hid, style_dim),
                AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim),
            ]
        )
        self.N = nn.ModuleList(
            [
                AdainResBlk1d(d_hid, d_hid, style_dim),
                AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim),
            ]
        )
        self.F0_proj = Conv1d(d_hid // 2, 1, 1)
        self.N_proj = Conv1d(d_hid // 2, 1, 1)

    def durations(
        self, d_en: torch.Tensor, s: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor, speed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict frames per phoneme.

        d_en: (B, T, 512) phoneme features, s: (B, 128) prosody style, lengths: (B,) on CPU,
        mask: (B, T, 1) float, speed: (B,) -> (durations (B, T) int64, 0 on padding, >= 1 elsewhere;
        d (B, T, 640) the duration encoder's features, which the frame phase aligns to frames).
        """
        d = self.text_encoder(d_en, s, lengths, mask)
        logits = self.duration_proj.linear_layer(self.lstm(d, lengths))  # (B, T, max_dur)
        frames = torch.sigmoid(logits).sum(-1) / speed[:, None]
        durations = torch.round(frames).clamp(min=1).long() * mask[..., 0].long()
        return durations, d

    def pitch_energy(
        self, x: torch.Tensor, s: torch.Tensor, mask: torch.Tensor, mask2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 512, F) the shared BiLSTM's output at 40 Hz, s: (B, 128), mask: (B, 1, F), mask2: (B, 1, 2F)
        -> (F0 (B, 2F), N (B, 2F)) at 80 Hz, zero on padding."""
        f0, n = x, x
        masks = ((mask, mask), (mask, mask2), (mask2, mask2))  # the middle block doubles the frame rate
        for block_f0, block_n, (m_in, m_out) in zip(self.F0, self.N, masks):
            f0 = block_f0(f0, s, m_in, m_out)
            n = block_n(n, s, m_in, m_out)
        return (self.F0_proj(f0) * mask2)[:, 0], (self.N_proj(n) * mask2)[:, 0]
