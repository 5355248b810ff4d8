"""The text encoder: phoneme embeddings refined by convolutions and a BiLSTM; it feeds the decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BiLSTM


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of (B, C, T) tensors (Kokoro names its parameters gamma and beta)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T)."""
        return F.layer_norm(x.transpose(1, 2), self.gamma.shape, self.gamma, self.beta, self.eps).transpose(1, 2)


class ConvBlock(nn.Sequential):
    """Conv1d -> channel LayerNorm -> LeakyReLU(0.2); indices 0 and 1 match checkpoint names `cnn.i.0`, `cnn.i.1`."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
            ChannelLayerNorm(channels),
            nn.LeakyReLU(0.2),
        )


class TextEncoder(nn.Module):
    def __init__(self, channels: int = 512, kernel_size: int = 5, depth: int = 3, n_symbols: int = 178):
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = nn.ModuleList([ConvBlock(channels, kernel_size) for _ in range(depth)])
        self.lstm = BiLSTM(channels, channels // 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens: (B, T), lengths: (B,) on CPU, mask: (B, 1, T) float -> (B, C, T), zero on padding."""
        x = self.embedding(tokens).transpose(1, 2) * mask  # (B, C, T)
        for block in self.cnn:
            x = block(x) * mask
        x = self.lstm(x.transpose(1, 2), lengths).transpose(1, 2)
        return x * mask
