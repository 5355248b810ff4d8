"""Ctrl-C and termination on the command line: one line, the conventional exit status, no file left behind.

Ctrl-C (SIGINT) ends a command with "voicegen: interrupted" and status 130; SIGTERM (`kill`, `timeout`, a job
scheduler, `docker stop`) and SIGHUP (the terminal closed) with "voicegen: terminated" and 128 + the signal, after
the same clean-up: Python's default for those two killed the process on the spot, leaving a command's temporary
output file (`.name.xxxx.part`) beside the output.

Python raises KeyboardInterrupt at the next bytecode of the main thread, which may be Python code that a native
extension called. In a stress run of `python -m voicegen say` (Ctrl-C 0.05-1.3 s in) that extension code replaced
the exception (numpy's import: an ImportError, reported as an internal error; torch reading the weight cache: a
ValueError, after which the cache was called damaged, rebuilt, and the whole text rendered and written), aborted
the process (SIGABRT during torch's import), or marked the interpreter so that it killed itself with SIGINT at exit
after printing the right line. So the command line
- installs `install`'s handlers, which remember the signal (`pending`) as well as raising it (KeyboardInterrupt,
  or `Terminated`, a subclass, so that whatever cleans up after Ctrl-C cleans up after termination too);
- imports torch and numpy in a `deferred` stretch, where a signal is raised only at its end;
- calls `check()` where it is about to commit to something (rename an output into place, rebuild a cache, delete a
  compiled graph, start the next window of a long text or script), and asks `pending()` in its broad `except`s;
- ends such a process with `os._exit` (voicegen/__main__.py), its files already cleaned up.
Without the handlers (voicegen used as a library) `check` and `pending` are no-ops.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())
"""What the command line handles: Ctrl-C, termination, and the terminal going away."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Python raises Ctrl-C: `signum` is the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_pending = 0  # the first signal received since `install`, 0 if none
_exiting = False
_deferring = 0
_previous: dict[int, object] = {}  # the handlers `install` replaced, while installed (None: set outside Python)


def _raised(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum, frame) -> None:
    global _pending
    _pending = _pending or signum
    if not _exiting and not _deferring:  # once the command is exiting, a late signal changes nothing
        raise _raised(signum)


def install() -> bool:
    """Handle `SIGNALS` (each unless ignored, as SIGINT in a background job or SIGHUP under nohup, which stay so),
    remembering the first (`pending`) -> whether this call installed them (False: already installed, or not the
    main thread)."""
    global _pending, _exiting
    if _previous or threading.current_thread() is not threading.main_thread():
        return False
    _pending, _exiting = 0, False
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        if previous is not signal.SIG_IGN:
            signal.signal(signum, _on_signal)
            _previous[signum] = previous
    return bool(_previous)


def exiting() -> None:
    """The command is ending (it finished, or is reporting an interrupt or an error): a later signal is remembered,
    not raised, so that it cannot turn the exit into a traceback."""
    global _exiting
    _exiting = True


def uninstall() -> None:
    """Put back the handlers that `install` replaced (for callers of the command line's `main` in-process)."""
    global _pending, _exiting
    for signum, previous in _previous.items():
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, default if previous is None else previous)
    _previous.clear()
    _pending, _exiting = 0, False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stretch where a signal is only remembered, and raised at its end: importing torch and numpy, whose native
    initialisation, interrupted, failed as an ImportError or aborted the process (SIGABRT, in a stress run)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def pending() -> bool:
    """Whether a signal of `SIGNALS` came since `install` (False when not installed)."""
    return bool(_pending)


def check() -> None:
    """In the main thread (where Python raises Ctrl-C), raise KeyboardInterrupt (`Terminated` for SIGTERM or SIGHUP)
    if such a signal came since `install` (it may have been swallowed on the way); elsewhere nothing."""
    if _pending and threading.current_thread() is threading.main_thread():
        raise _raised(_pending)


def report() -> int:
    """The command line's end after a signal: one line on stderr -> the exit status, 128 + the signal (130 for
    Ctrl-C, also when it came without the handlers)."""
    exiting()
    signum = _pending or signal.SIGINT
    try:
        print(f"voicegen: {'interrupted' if signum == signal.SIGINT else 'terminated'}", file=sys.stderr)
    except (OSError, ValueError):  # no terminal any more (SIGHUP): the status says it
        pass
    return 128 + signum
