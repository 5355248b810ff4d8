"""The phoneme encoder: an ALBERT (one transformer layer applied 12 times) over phoneme tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import weights_key

HALF_PRECISION = {"cuda": torch.float16}
"""Per device type: the dtype ALBERT runs its matrix products in (None or absent: float32). ALBERT is the
token phase's arithmetic (~0.13 GFLOP per padded token), which float32 runs on a GPU's plain FMA units; float16 has
TF32's 10-bit mantissa and twice its tensor-core rate, and ALBERT's largest activation (286 on the benchmark corpus)
is far inside its range. Measured against float32 on the CPU (benchmarks/RESULTS.md, eleventh session): 0.07% of
token durations one frame apart (onnxruntime's int8 oracle and our float32 differ on up to 15%,
tests/test_parity.py; bfloat16 moved 0.76%, up to two frames). Not on the CPU, whose
float16 products are slower than float32. Its output is float32 either way.

The casts are autocast's (products and attention in `dtype`, layer norms and residual sums of float32 terms in
float32; tests/test_cuda.py holds the two equal on a GPU), written out so that the weights are cast once, not on every
call: under inference mode autocast cast the weight and bias of each of a pass's 73 products again, although the 12
layers share one set (146 casts per pass, tests/test_layers.py; with the inputs' casts 216 casting kernels per token
batch in an H200 profile, a sixth of the eager launches on the way to the first audio)."""


def _weights(module: nn.Module, dtype: torch.dtype | None, params: tuple[torch.Tensor, ...],
             make=None) -> tuple[torch.Tensor, ...]:
    """`params` (some of module's parameters), or `make(*params)` computed from them, cast to `dtype` (None: as they
    are): computed once and kept on the module, not registered, until one of those parameters changes (its storage
    or version; a check of a few hundred nanoseconds a parameter, where autocast launched a cast); computed on every
    call while autograd records gradients for one of them (training), so that gradients reach them."""
    fresh = lambda: tuple(t if dtype is None else t.to(dtype) for t in (make(*params) if make else params))  # noqa: E731
    if torch.is_grad_enabled() and any(p.requires_grad for p in params):
        return fresh()
    key = (dtype, weights_key(params))
    cached = module.__dict__.get("_derived")
    if cached is None or cached[0] != key:
        with torch.inference_mode(False), torch.no_grad():  # usable outside inference mode too
            cached = (key, fresh())
        module.__dict__["_derived"] = cached
    return cached[1]


def _linear(module: nn.Linear, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """module(x) with its product in `dtype` (None: as x is), as autocast would run it, on weights cast once."""
    weight, bias = _weights(module, dtype, (module.weight, module.bias))
    return F.linear(x if dtype is None else x.to(dtype), weight, bias)


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


def _stack(*weights_and_biases: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear layers' (weight, bias, weight, bias, ...) stacked into one layer's: weight (sum of outputs, inputs),
    bias (sum of outputs,)."""
    return torch.cat(weights_and_biases[0::2]), torch.cat(weights_and_biases[1::2])


class AlbertAttention(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        h = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.query, self.key, self.value, self.dense = (nn.Linear(h, h) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(h, eps=cfg.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """x: (B, T, H), bias: (B, 1, 1, T) additive key mask, in `dtype` if one is given; dtype: of the products
        (None: x's) -> (B, T, H) float32 (x's dtype when dtype is None)."""
        parts = (self.query, self.key, self.value)  # one product for the three projections
        weight, bias_qkv = _weights(self, dtype, tuple(t for f in parts for t in (f.weight, f.bias)), _stack)
        qkv = F.linear(x if dtype is None else x.to(dtype), weight, bias_qkv)  # (B, T, 3H)
        rows, steps, width = x.shape  # views, not einops: its parsing cost ~35 us of host time a call
        q, k, v = qkv.view(rows, steps, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, T, d)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = x + _linear(self.dense, ctx.transpose(1, 2).reshape(rows, steps, width), dtype)
        return self.LayerNorm(out if dtype is None else out.float())


class AlbertLayer(nn.Module):
    def __init__(self, cfg: AlbertConfig):
        super().__init__()
        self.attention = AlbertAttention(cfg)
        self.ffn = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ffn_output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """x: (B, T, H) -> (B, T, H) float32 (x's dtype when dtype is None); dtype: of the products."""
        a = self.attention(x, bias, dtype)
        out = a + _linear(self.ffn_output, F.gelu(_linear(self.ffn, a, dtype), approximate="tanh"), dtype)
        return self.full_layer_layer_norm(out if dtype is None else out.float())


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

    def forward(self, x: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """x: (B, T, E) -> (B, T, H); the single shared layer is applied num_layers times, its products in `dtype`
        (None: x's)."""
        x = _linear(self.embedding_hidden_mapping_in, x, dtype)
        layer = self.albert_layer_groups[0].albert_layers[0]
        for _ in range(self.num_layers):
            x = layer(x, bias, dtype)
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
        x = self.embeddings(tokens)
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, torch.finfo(x.dtype).min)
        if dtype is not None:  # float32's lowest is -inf in float16 (autocast's cast too): no row is all padding
            bias = bias.to(dtype)
        return self.encoder(x, bias[:, None, None, :], dtype)
