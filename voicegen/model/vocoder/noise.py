"""Counter-based Gaussian noise: sample n of the stream seeded by s is a pure function of (s, n).

The harmonic source needs unit Gaussian noise per item. Drawing it from a stateful generator per item costs a host
loop (and, on a GPU, a launch or a host-to-device copy per item); here every value is computed from its seed and
its index by integer hashing, inside the frame phase itself: vectorized over the batch, fused by torch.compile,
captured by CUDA graphs, and independent of the batch an item lands in by construction.

The hash works on 32-bit words held in int64 tensors, multiplying only by constants below 2**27, so no product
exceeds 2**59 and nothing depends on overflow behaviour; the same integers come out on every device. A stream's key
hashes the whole 64-bit seed; word k of the stream is the hash of (key + k) mod 2**32, and two words per sample
(one per uniform) feed the Box-Muller transform. Two seeds therefore give the same word sequence shifted by a
random 32-bit offset: streams of two items overlap only if that offset is shorter than an item (~1e6 of 4e9).
"""

from __future__ import annotations

import math

import torch

_MASK = 0xFFFFFFFF
_MUL = 0x45D9F3B  # < 2**27: products of 32-bit words stay below 2**59
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """An avalanching permutation of 32-bit words (int64 tensors holding values in [0, 2**32))."""
    x = x ^ (x >> 16)
    x = (x * _MUL) & _MASK
    x = x ^ (x >> 16)
    x = (x * _MUL) & _MASK
    x = x ^ (x >> 16)
    x = (x * _MUL) & _MASK
    return x ^ (x >> 16)


def _uniform(words: torch.Tensor) -> torch.Tensor:
    """32-bit words -> float32 uniforms in (0, 1): the top 24 bits, centred in their interval (never 0 or 1)."""
    return ((words >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def gaussian_noise(seeds: torch.Tensor, samples: int) -> torch.Tensor:
    """seeds: (B,) int64 (any value; taken modulo 2**64 as two 32-bit words) -> (B, samples) float32 unit Gaussian.

    Row b, column n depends only on (seeds[b], n): the same seed gives the same stream whatever else is in the batch,
    on whatever device, and a longer row extends a shorter one.
    """
    lo = _mix32(seeds & _MASK)  # (B,)
    hi = _mix32(((seeds >> 32) & _MASK) ^ _GOLDEN)
    key = _mix32(lo ^ ((hi * 3) & _MASK))[:, None]  # (B, 1): one key per stream, from all 64 bits
    word = 2 * torch.arange(samples, device=seeds.device, dtype=torch.int64)[None, :] + key  # (B, samples)
    u1 = _uniform(_mix32(word & _MASK))
    u2 = _uniform(_mix32((word + 1) & _MASK))
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
