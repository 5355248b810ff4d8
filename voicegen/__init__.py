"""voicegen: fast multi-speaker text-to-speech.

    from voicegen import synthesize
    synthesize("Hello there!").save("hello.wav")

The names below are imported on first use, so `import voicegen` (and the CLI's start, where Ctrl-C must already
be handled) does not pay for torch until it is needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_WHERE = {
    "get_engine": ".api", "synthesize": ".api", "voices": ".api",
    "Audio": ".audio", "Segment": ".audio", "Word": ".audio",
    "SAMPLE_RATE": ".constants",
    "Engine": ".engine", "Request": ".engine",
    "Performance": ".performance",
    "fit_voice": ".api",
    "Voice": ".weights",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'voicegen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
