"""`python -m voicegen` and the `voicegen` command: the command line (`voicegen.cli.main`) with Ctrl-C and
termination handled from the first moment to the last (`voicegen.interrupts`)."""

import os
import sys

from . import interrupts


def run() -> None:
    """Run the command line on sys.argv and end the process with its exit status."""
    interrupts.install()  # first: a Ctrl-C while the command line is still importing is reported as any other
    try:
        from .cli import main

        status = main()
    except KeyboardInterrupt:
        status = interrupts.report()
    if status > 128 and interrupts.pending():
        # Python ends a process whose Ctrl-C ever passed through code that a native extension ran with
        # PyRun_String (pybind11 modules, on import) by killing itself with SIGINT, whatever the exit status; the
        # command has cleaned up (temporary files, workers) on its way out, so it ends here, with its own status.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)
    raise SystemExit(status)


if __name__ == "__main__":
    run()
