"""Load Kokoro's official PyTorch checkpoint (`kokoro-v1_0.pth`) into our state-dict layout.

The checkpoint is a dict of five state dicts ({"bert": ..., "bert_encoder": ..., "predictor": ...,
"text_encoder": ..., "decoder": ...}), keys possibly prefixed with "module.", convolutions weight-normed
(`weight_g`, `weight_v`). We fold weight norm, drop what our modules do not have (the ALBERT pooler, the
position-id buffer, identity affine parameters of instance norms), and refuse anything else.
"""

from __future__ import annotations

import re
from os import PathLike

import torch

_UNUSED = re.compile(r"^bert\.(pooler\.|embeddings\.position_ids$)")
_INSTANCE_NORM_AFFINE = re.compile(r"\.(norm1|norm2|adain1\.\d+|adain2\.\d+)\.norm\.(weight|bias)$")


class CheckpointError(ValueError):
    pass


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every (`x.weight_g`, `x.weight_v`) pair by `x.weight` = g * v / ||v|| (norm over all but dim 0)."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_g"):
            stem = key[: -len("_g")]
            v = state[stem + "_v"].float()
            norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
            out[stem] = value.float() * v / norm
        else:
            out[key] = value
    return out


def convert_checkpoint(state: dict) -> dict[str, torch.Tensor]:
    """Official Kokoro checkpoint (nested or flat) -> float32 state dict for `KokoroNetwork`."""
    if all(isinstance(v, dict) for v in state.values()):
        flat = {}
        for part, sub in state.items():
            for key, value in sub.items():
                flat[f"{part}.{key.removeprefix('module.')}"] = value
        state = flat
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = fold_weight_norm(state)
    out = {}
    for key, value in state.items():
        if _UNUSED.search(key):
            continue
        if _INSTANCE_NORM_AFFINE.search(key):
            identity = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
            if not torch.allclose(value.float(), identity):
                raise CheckpointError(f"{key}: instance-norm affine parameters that are not identity are not supported")
            continue
        out[key] = value.float()
    return out


def load_checkpoint(path: str | PathLike) -> dict[str, torch.Tensor]:
    """Read a `.pth`/`.pt` Kokoro checkpoint safely (weights_only) and convert it."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    return convert_checkpoint(state)
