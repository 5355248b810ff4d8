"""Voice files: one voice in one file, `NAME.voice`, as safetensors (plain numbers and strings: no pickle, no code).

Format, version 1 (a standard safetensors file that any safetensors reader opens):

- one tensor, ``style``: float32, shape (510, 256): one style vector per phoneme count, as Kokoro's voices are
  (row n - 1 styles an item of n phonemes; `style[:, :128]` timbre, `style[:, 128:]` prosody);
- metadata, all strings:

  ========== =============================================================================================
  format     ``voicegen-voice`` (anything else is a foreign file and is refused)
  version    ``1``
  name       the voice's name: a letter or digit, then letters, digits, ``_ . -`` (at most 64)
  pitch      semitones the voice is shifted by when it speaks, a decimal number in [-12, 12] (``0``)
  speed      its speaking-rate factor, a decimal number in [0.25, 4] (``1``)
  provenance a JSON object: how the voice was made (``{"method": "fit", ...}``, ``{"method": "blend",
             "spec": "jf_alpha:2+jm_kumo:1"}``), free-form beyond ``method``
  ========== =============================================================================================

A voice's pitch and speed are its own baseline: a request's pitch adds to it, a request's speed multiplies it.
Files are written with sorted JSON keys and no timestamps that change on rewrite, so writing a loaded voice
reproduces the file byte for byte.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import torch

from ..checks import is_number_in
from ..constants import MAX_PHONEMES, PITCH_RANGE, SPEED_RANGE, STYLE_DIM
from ..files import atomic_write
from .voices import VoiceError, as_voice_table, style_for

FORMAT = "voicegen-voice"
VERSION = 1
SUFFIX = ".voice"
MAX_FILE_BYTES = 16 << 20
"""A version-1 voice file is about 522 kB; anything much larger is not one (refused before it is read)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,63}$")


def check_pitch(pitch) -> float:
    """A pitch shift in semitones within PITCH_RANGE as a float; ValueError (naming the range) for anything else."""
    if not is_number_in(pitch, PITCH_RANGE):
        lo, hi = PITCH_RANGE
        raise ValueError(f"pitch must be a number of semitones from {lo:g} to {hi:g} (0 is the voice's own); got {pitch!r}")
    return float(pitch)


def check_voice_name(name) -> str:
    """A name usable in blends, cast headers and file names; VoiceError otherwise."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith(SUFFIX):
        raise VoiceError(
            f"bad voice name {name!r}: use a letter or digit, then letters, digits, '_', '.' or '-' (at most 64 "
            f"characters, not ending in {SUFFIX})"
        )
    return name


@dataclass(eq=False)
class Voice:
    """A voice: its (510, 256) style table (fewer rows are allowed in memory, not in files), name, and the pitch (semitones) and speed it speaks with by default.

    `provenance` says how it was made (a JSON-able dict). `save(path)` writes a voice file; `Voice.load(path)`
    reads one (VoiceError for a missing, corrupt or foreign file).
    """

    name: str
    table: torch.Tensor
    pitch: float = 0.0
    speed: float = 1.0
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        check_voice_name(self.name)
        self.table = as_voice_table(self.table, self.name, full=False)
        if self.table.shape[0] > MAX_PHONEMES:
            raise VoiceError(f"{self.name}: a voice table has at most {MAX_PHONEMES} rows; got {self.table.shape[0]}")
        try:
            self.pitch = check_pitch(self.pitch)
        except ValueError as e:
            raise VoiceError(f"{self.name}: {e}") from None
        lo, hi = SPEED_RANGE
        if isinstance(self.speed, bool) or not isinstance(self.speed, (int, float)) or not (
            math.isfinite(self.speed) and lo <= self.speed <= hi
        ):
            raise VoiceError(f"{self.name}: speed must be a number from {lo} to {hi}; got {self.speed!r}")
        self.speed = float(self.speed)
        if not isinstance(self.provenance, Mapping):
            raise VoiceError(f"{self.name}: provenance must be a dict; got {type(self.provenance).__name__}")
        try:
            self.provenance = json.loads(json.dumps(dict(self.provenance), sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise VoiceError(f"{self.name}: provenance must be JSON data (numbers, strings, lists, dicts): {e}") from None

    def pitch_for(self, pitch: float) -> float:
        """The pitch this voice speaks a request's `pitch` (semitones, already checked) with: its own plus the
        request's. ValueError, naming both and the sum, when the sum leaves PITCH_RANGE."""
        lo, hi = PITCH_RANGE
        return self._combined("pitch", pitch, self.pitch + pitch, "plus", PITCH_RANGE, (lo - self.pitch, hi - self.pitch))

    def speed_for(self, speed: float) -> float:
        """The speed this voice speaks a request's `speed` (already checked) at: its own times the request's.
        ValueError, naming both and the product, when the product leaves SPEED_RANGE."""
        lo, hi = SPEED_RANGE
        return self._combined("speed", speed, self.speed * speed, "times", SPEED_RANGE, (lo / self.speed, hi / self.speed))

    def _combined(self, what: str, requested: float, total: float, how: str, bounds: tuple[float, float],
                  allowed: tuple[float, float]) -> float:
        """`total` (this voice's own `what` combined with the `requested` one), or ValueError naming both, the
        total, `bounds` and the `allowed` requests with this voice."""
        lo, hi = bounds
        if not lo <= total <= hi:
            raise ValueError(f"{what} out of range: voice {self.name!r} has its own {what} {getattr(self, what):g}, "
                             f"{how} the requested {requested:g} gives {total:g}, outside {lo:g} to {hi:g} (with this "
                             f"voice, {what} must be from {max(lo, allowed[0]):g} to {min(hi, allowed[1]):g})")
        return total

    def style(self, n_phonemes: int) -> torch.Tensor:
        """The (256,) style row for an item of `n_phonemes` phonemes."""
        return style_for(self.table, n_phonemes)

    def to_bytes(self) -> bytes:
        """The voice file's contents (see the module docstring for the format). VoiceError unless the table has
        all 510 rows."""
        if tuple(self.table.shape) != (MAX_PHONEMES, STYLE_DIM):
            raise VoiceError(f"{self.name}: a voice file holds a ({MAX_PHONEMES}, {STYLE_DIM}) table; got {tuple(self.table.shape)}")
        data = self.table.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        metadata = {
            "format": FORMAT,
            "version": str(VERSION),
            "name": self.name,
            "pitch": repr(self.pitch),
            "speed": repr(self.speed),
            "provenance": json.dumps(self.provenance, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        }
        header = {
            "__metadata__": dict(sorted(metadata.items())),
            "style": {"dtype": "F32", "shape": list(self.table.shape), "data_offsets": [0, len(data)]},
        }
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text += b" " * (-len(text) % 8)  # safetensors pads the header with spaces to 8-byte alignment
        return struct.pack("<Q", len(text)) + text + data

    def save(self, path: str | PathLike) -> Path:
        """Write the voice file at `path` (atomically: a temporary name, then a rename) -> the path."""
        blob = self.to_bytes()
        return atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))

    @classmethod
    def load(cls, path: str | PathLike) -> Voice:
        return read_voice(path)


def read_voice(path: str | PathLike) -> Voice:
    """Read a voice file -> Voice. VoiceError, naming the file and what is wrong, for a missing file, a file that
    is not safetensors, a safetensors file that is not a voicegen voice, or a voice with bad contents. Nothing in
    the file is ever executed: safetensors holds only a JSON header and raw numbers."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise VoiceError(f"voice file not found: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise VoiceError(f"{path}: {size} bytes is too large for a voice file (a voice is about 522 kB)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            keys = list(f.keys())
            tensors = {k: f.get_tensor(k) for k in keys if k == "style"}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise VoiceError(f"{path}: not a voice file (voice files are safetensors, written by `voicegen voice fit` "
                         f"or `voicegen voice blend`): {e}") from None
    if metadata.get("format") != FORMAT:
        raise VoiceError(f"{path}: a safetensors file, but not a voicegen voice (format {metadata.get('format')!r}, "
                         f"expected {FORMAT!r})")
    try:
        version = int(metadata.get("version", ""))
    except ValueError:
        raise VoiceError(f"{path}: bad format version {metadata.get('version')!r}") from None
    if version > VERSION:
        raise VoiceError(f"{path}: voice format version {version} is newer than this voicegen reads ({VERSION}); upgrade voicegen")
    if keys != ["style"]:
        raise VoiceError(f"{path}: a voice file holds exactly one tensor named 'style'; found {sorted(keys)}")
    style = tensors["style"]
    if style.dtype != torch.float32 or tuple(style.shape) != (MAX_PHONEMES, STYLE_DIM):
        raise VoiceError(f"{path}: 'style' must be float32 ({MAX_PHONEMES}, {STYLE_DIM}); got {style.dtype} {tuple(style.shape)}")
    missing = [k for k in ("name", "pitch", "speed", "provenance") if k not in metadata]
    if missing:
        raise VoiceError(f"{path}: the voice's metadata lacks {', '.join(missing)}")
    try:
        pitch, speed = float(metadata["pitch"]), float(metadata["speed"])
        provenance = json.loads(metadata["provenance"])
    except ValueError as e:
        raise VoiceError(f"{path}: unreadable pitch, speed or provenance in the metadata: {e}") from None
    if not isinstance(provenance, dict):
        raise VoiceError(f"{path}: provenance must be a JSON object; got {type(provenance).__name__}")
    try:
        return Voice(metadata["name"], style, pitch, speed, provenance)
    except VoiceError as e:
        raise VoiceError(f"{path}: {e}") from None


def is_voice_path(spec: str) -> bool:
    """True when a voice spec names a file rather than a registered voice: it ends in .voice or has a path separator."""
    return spec.lower().endswith(SUFFIX) or os.sep in spec or "/" in spec


def user_voice_dir() -> Path:
    """The user's voices: `data_dir()/voices` ($VOICEGEN_DATA, else $XDG_DATA_HOME/voicegen, else
    ~/.local/share/voicegen). Every NAME.voice there is a voice named NAME."""
    from .store import data_dir

    return data_dir() / "voices"


def user_voice_path(name: str) -> Path:
    """Where the user's voice NAME lives: `user_voice_dir()/NAME.voice`. VoiceError for a bad name or the name of
    a built-in voice (which cannot be taken). Nothing is written or created."""
    from .voices import builtin_voices

    name = check_voice_name(name)
    if name in builtin_voices():
        raise VoiceError(f"{name!r} is a built-in voice; choose another name")
    return user_voice_dir() / f"{name}{SUFFIX}"


def install_voice(voice: Voice, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Save `voice` into `user_voice_dir()` as NAME.voice (default: the voice's own name) -> the path.
    VoiceError if NAME is a built-in voice, or already taken and `overwrite` is False."""
    name = name or voice.name
    path = user_voice_path(name)
    if path.exists() and not overwrite:
        raise VoiceError(f"a user voice named {name!r} exists already ({path}); choose another name, or replace it "
                         "(overwrite=True; on the command line, --force)")
    if name != voice.name:
        voice = Voice(name, voice.table, voice.pitch, voice.speed, voice.provenance)
    return voice.save(path)
