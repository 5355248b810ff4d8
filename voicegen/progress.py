"""Telling a waiting user what is happening: progress lines on stderr, never on stdout (which may carry data).

Progress is shown when stderr is a terminal, unless a program decides otherwise with `show_progress(True)` (the
CLI's `--progress`) or `show_progress(False)` (`--quiet`). Warnings are not progress: they always show.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

_forced: bool | None = None


def show_progress(enabled: bool | None) -> None:
    """Force progress on (True) or off (False) for this process; None: only when stderr is a terminal."""
    global _forced
    _forced = enabled


def progress_enabled() -> bool:
    """Whether progress lines should be written now (see the module docstring)."""
    if _forced is not None:
        return _forced
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def notice(message: str) -> None:
    """One progress line, `voicegen: message`, on stderr when progress is enabled."""
    if progress_enabled():
        print(f"voicegen: {message}", file=sys.stderr, flush=True)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 sentence', '2 sentences', '0 turns'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def progress_bar(unit: str, stream=None) -> Callable[..., None]:
    """A one-line bar, `show(done, total, seconds=None)`, redrawn in place on `stream` (default stderr); a newline
    when done. `unit` names what is counted, in the singular ("turn", "sentence"); `seconds`, when given, is the
    audio rendered so far. Safe to call from several threads."""
    started = time.monotonic()
    shown = [None]
    lock = threading.Lock()

    def show(done: int, total: int, seconds: float | None = None) -> None:
        with lock:
            if shown[0] == (done, total):  # the same count again (e.g. at a window's end): nothing new to draw
                return
            shown[0] = (done, total)
            out = stream or sys.stderr
            width = 30
            filled = int(width * done / max(total, 1))
            elapsed = time.monotonic() - started
            took = f"{elapsed:.0f} s" if seconds is None else f"{seconds:.0f} s of audio in {elapsed:.0f} s"
            out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{count(total, unit)}, {took}")
            if done >= total:
                out.write("\n")
            out.flush()

    return show
