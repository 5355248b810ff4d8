"""Handing memory that the C allocator keeps free back to the operating system, between frame batches.

Why: on Linux with glibc, the CPU frame phase's large temporaries (tens of MB each) come from malloc's heap,
because glibc raises its mmap threshold to the size of the first large block freed (up to 32 MB). Every batch then
leaves a few long-lived allocations behind it (its items' audio, oneDNN primitives for its new shape) between the
blocks it freed, and the next batch, usually larger since batches run shortest first, does not fit in those holes:
the heap grows by about one batch's working set per batch, and the free pages stay resident. `voicegen say` peaked
at 2.1 GB for 100 s of audio and 9.8 GB for 16 minutes before windowed rendering and this call (figures from that
investigation, not kept as a result file; today's are in benchmarks/RESULTS.md, "memory of long texts and
scripts").
`malloc_trim(0)` gives every free page of every arena back; the renderer calls `release_free_memory()` after each
frame batch, which bounds resident memory by the largest batch instead of the length of the text.

Elsewhere (macOS, Windows, musl) this is a no-op: those allocators return large blocks by themselves.
"""

from __future__ import annotations

import ctypes
import sys

_trim = None
if sys.platform.startswith("linux"):
    try:
        _trim = ctypes.CDLL("libc.so.6").malloc_trim
        _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        _trim = None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS (glibc `malloc_trim(0)`); True if anything was released.
    Cheap (about a millisecond per hundred MB): the pages are free already, only their mapping goes."""
    return bool(_trim(0)) if _trim is not None else False
