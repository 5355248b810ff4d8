"""Ctrl-C on the command line: always exit 130 with one line, whatever native code did with the interrupt.

Python raises KeyboardInterrupt at the next bytecode of the main thread, which may be Python code that a native
extension called. In a stress run of `python -m voicegen say` (Ctrl-C 0.05-1.3 s in) that extension code replaced
the exception (numpy's import: an ImportError, reported as an internal error; torch reading the weight cache: a
ValueError, after which the cache was called damaged, rebuilt, and the whole text rendered and written), aborted
the process (SIGABRT during torch's import), or marked the interpreter so that it killed itself with SIGINT at exit
after printing the right line. So the command line
- installs `install`'s handler, which remembers the interrupt (`pending`) as well as raising it;
- imports torch and numpy in a `deferred` stretch, where an interrupt is raised only at its end;
- calls `check()` where it is about to commit to something (rename an output into place, rebuild a cache, delete a
  compiled graph, start the next window of a long text or script), and asks `pending()` in its broad `except`s;
- ends an interrupted process with `os._exit(130)` (voicegen/__main__.py), its files already cleaned up.
Without the handler (voicegen used as a library) `check` and `pending` are no-ops.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

_pending = False
_exiting = False
_installed = False
_deferring = 0
_previous = None  # the handler `install` replaced (None: one set outside Python)


def _on_sigint(signum, frame) -> None:
    global _pending
    _pending = True
    if not _exiting and not _deferring:  # once the command is exiting, a late interrupt changes nothing
        raise KeyboardInterrupt


def install() -> bool:
    """Handle Ctrl-C (SIGINT) as Python does, remembering it (`pending`) -> whether this call installed the handler
    (False: already installed, not the main thread, or SIGINT ignored, as in a background job, where it stays so)."""
    global _pending, _exiting, _installed, _previous
    if _installed or threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        return False
    _pending = _exiting = False
    signal.signal(signal.SIGINT, _on_sigint)
    _installed, _previous = True, previous
    return True


def exiting() -> None:
    """The command is ending (it finished, or is reporting an interrupt or an error): a later Ctrl-C is remembered,
    not raised, so that it cannot turn the exit into a traceback."""
    global _exiting
    _exiting = True


def uninstall() -> None:
    """Put back the handler that `install` replaced (for callers of the command line's `main` in-process)."""
    global _pending, _exiting, _installed, _previous
    if _installed:
        signal.signal(signal.SIGINT, signal.default_int_handler if _previous is None else _previous)
    _pending = _exiting = _installed = False
    _previous = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stretch where Ctrl-C is only remembered, and raised at its end: importing torch and numpy, whose native
    initialisation, interrupted, failed as an ImportError or aborted the process (SIGABRT, in a stress run)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def pending() -> bool:
    """Whether Ctrl-C was pressed since `install` (False when it is not installed)."""
    return _pending


def check() -> None:
    """In the main thread (where Python raises Ctrl-C), raise KeyboardInterrupt if Ctrl-C was pressed since `install`
    (it may have been swallowed on the way); elsewhere nothing."""
    if _pending and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt


def report() -> int:
    """The command line's end after Ctrl-C: one line on stderr -> the exit status, 130 (128 + SIGINT)."""
    exiting()
    print("voicegen: interrupted", file=sys.stderr)
    return 130
