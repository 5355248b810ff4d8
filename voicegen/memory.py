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

`small_pages(array)` is the other Linux detail here: it opts one large array out of transparent huge pages (see
its docstring; the mixer's frame buffer uses it).
"""

from __future__ import annotations

import ctypes
import mmap
import sys

_trim = _madvise = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL("libc.so.6")
        _trim = _libc.malloc_trim
        _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
        _madvise = _libc.madvise
        _madvise.argtypes, _madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        _trim = _madvise = None
_MADV_NOHUGEPAGE = 15
_PAGE = mmap.PAGESIZE


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS (glibc `malloc_trim(0)`); True if anything was released.
    Cheap (about a millisecond per hundred MB): the pages are free already, only their mapping goes."""
    return bool(_trim(0)) if _trim is not None else False


def small_pages(array) -> None:
    """Ask the kernel not to back `array`'s memory (its whole pages) with transparent huge pages; Linux only, a no-op
    elsewhere or where the call fails. Returns nothing either way: it changes timing, never contents.

    numpy advises huge pages for every array of 4 MB or more. Where huge pages are given on request only (the
    common `madvise` setting), the first write to each 2 MB then makes the kernel find, and in a fragmented process
    (one that has just rendered with torch) compact, 2 MB of contiguous memory while the writer waits: seen as
    10-30 ms of system time in one mix of a one-minute episode. With small pages a first write costs one short
    fault per 4 KB, and memory the allocator reuses costs nothing."""
    if _madvise is None or not array.nbytes:
        return
    address = array.__array_interface__["data"][0]
    start = -(-address // _PAGE) * _PAGE
    stop = (address + array.nbytes) // _PAGE * _PAGE
    if stop > start:
        _madvise(start, stop - start, _MADV_NOHUGEPAGE)
