"""The phoneme encoder: an ALBERT (one transformer layer applied 12 times) over phoneme tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

HALF_PRECISION = {"cuda": torch.float16}
"""Per device type: the dtype ALBERT runs its matrix products in (autocast; None or absent: float32). ALBERT is the
token phase's arithmetic (~0.13 GFLOP per padded token), which float32 runs on a GPU's plain FMA units; float16 has
TF32's 10-bit mantissa and twice its tensor-core rate, and ALBERT's largest activation (286 on the benchmark corpus)
is far inside its range. Measured against float32 on the CPU (benchmarks/RESULTS.md, eleventh session): 0.07% of
token durations one frame apart (onnxruntime's int8 oracle and our float32 differ on up to 15%,
tests/test_parity.py; bfloat16 moved 0.76%, up to two frames). Not on the CPU, whose
float16 products are slower than float32. Its output is float32 either way."""


@dataclass(frozen=True)
class AlbertConfig:
    vocab_size: int = 178
    embedding_size: int = 128
    hidden_size: int = 768
    num_heads: int = 12
    intermediate_size: int = 2048
    num_layers: int = 12
    max_positions: int = 512
    eps: float = 1e-12


class AlbertEmbeddings(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.embedding_size)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.embedding_size)
        self.token_type_embeddings = nn.Embedding(2, cfg.embedding_size)
        self.LayerNorm = nn.LayerNorm(cfg.embedding_size, eps=cfg.eps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, T) -> (B, T, E)."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.word_embeddings(tokens) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class AlbertAttention(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        h = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.query, self.key, self.value, self.dense = (nn.Linear(h, h) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(h, eps=cfg.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H), bias: (B, 1, 1, T) additive key mask -> (B, T, H)."""
        q, k, v = (rearrange(f(x), "b t (h d) -> b h t d", h=self.num_heads) for f in (self.query, self.key, self.value))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.LayerNorm(x + self.dense(rearrange(ctx, "b h t d -> b t (h d)")))


class AlbertLayer(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        self.attention = AlbertAttention(cfg)
        self.ffn = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ffn_output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H) -> (B, T, H)."""
        a = self.attention(x, bias)
        return self.full_layer_layer_norm(a + self.ffn_output(F.gelu(self.ffn(a), approximate="tanh")))


class AlbertLayerGroup(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(cfg)])


class AlbertEncoder(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        self.num_layers = cfg.num_layers
        self.embedding_hidden_mapping_in = nn.Linear(cfg.embedding_size, cfg.hidden_size)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(cfg)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x: (B, T, E) -> (B, T, H); the single shared layer is applied num_layers times."""
        x = self.embedding_hidden_mapping_in(x)
        layer = self.albert_layer_groups[0].albert_layers[0]
        for _ in range(self.num_layers):
            x = layer(x, bias)
        return x


class Albert(nn.Module):
    """ALBERT without pooler. Parameter names follow Hugging Face's AlbertModel (as in Kokoro checkpoints)."""

    def __init__(self, cfg: AlbertConfig = AlbertConfig()):
        super().__init__()
        self.embeddings = AlbertEmbeddings(cfg)
        self.encoder = AlbertEncoder(cfg)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens: (B, T) int64, mask: (B, T) bool valid -> (B, T, H) float32 (computed in
        `HALF_PRECISION[device type]` where one is set)."""
        dtype = HALF_PRECISION.get(tokens.device.type)
        if dtype is None:
            return self._encode(tokens, mask)
        with torch.autocast(tokens.device.type, dtype=dtype):
            return self._encode(tokens, mask).float()

    def _encode(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(tokens)
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, torch.finfo(x.dtype).min)
        return self.encoder(x, bias[:, None, None, :])
