"""Memory that does not grow with the input: the heap pages a frame batch frees go back to the OS, and `voicegen
say` on a long text peaks where it does on a short one (measured in child processes: ru_maxrss of each); and the
mixer's large frame buffer stays off transparent huge pages."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc's malloc only")


@linux_glibc
def test_release_free_memory_returns_heap_pages_that_small_blocks_pin():
    """The renderer's allocation pattern in miniature: after one large free, glibc serves tensors of a few MB from
    its heap; a small long-lived block after each (an item's audio, a oneDNN primitive) keeps the freed ones from
    returning to the OS. `release_free_memory` must give them back (catches a no-op or a wrong libc binding, i.e.
    memory that again grows batch after batch)."""
    code = textwrap.dedent("""
        import torch
        from voicegen.memory import release_free_memory
        def rss():
            for line in open('/proc/self/status'):
                if line.startswith('VmRSS'):
                    return int(line.split()[1]) // 1024
        first = torch.ones(2 << 20); del first          # glibc raises its mmap threshold past 8 MB
        keep, big = [], []
        for _ in range(64):
            big.append(torch.ones(1 << 20))             # 4 MB each: heap blocks now
            keep.append(torch.ones(1024))               # a small long-lived block after each
        big.clear()
        held = rss()
        release_free_memory()
        print(held, rss())
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    held, after = map(int, out.stdout.split())
    assert held - after >= 200, (held, after)  # 256 MB were freed but held


EXACT_HEAP = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1048576"}
"""glibc serves every block of 1 MB or more with its own mapping and unmaps it when freed: resident memory is then
what the process holds, without the heap fragmentation that otherwise adds 0.3-1 GB to a frame batch's peak by
chance (it depends on thread timing: the same command peaked 0.9-1.5 GB between runs on a loaded machine)."""


def peak_mb(args: list[str], env: dict | None = None) -> int:
    """Peak resident memory (MB) of `python -m voicegen ARGS` in a child process."""
    from memory import run

    return run(args, ROOT, env=env)["peak_mb"]


@pytest.mark.slow
@linux_glibc
def test_say_peak_memory_does_not_grow_with_the_text(tmp_path):
    """`voicegen say` on ~2,700 characters (two windows, ~40 chunks) peaks within 150 MB of ~300 characters (4
    chunks), at speed 4 to keep the render short (the same chunks and batches with a quarter of the frames), with
    the heap's fragmentation taken out (EXACT_HEAP), so that the figure is what voicegen holds. Before windowed
    rendering the whole text's features and audio were held at once (catches any return of memory that grows with
    the text: features, audio or items kept past their window)."""
    from memory import prose

    peaks = {}
    for chars in (300, 2700):
        text = tmp_path / f"t{chars}.txt"
        text.write_text(prose(chars), encoding="utf-8")
        peaks[chars] = peak_mb(["say", "-f", str(text), "-o", str(tmp_path / "o.flac"), "--seed", "0",
                                "--device", "cpu", "--speed", "4"], env=EXACT_HEAP)
    assert peaks[2700] - peaks[300] < 150, peaks


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process that holds `address` (/proc/self/smaps)."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    inside = False
    for line in lines:
        head = line.split(" ", 1)[0]
        if "-" in head and not line.endswith(":") and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo <= address < hi
        elif inside and line.startswith("VmFlags:"):
            return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc only")
def test_the_mixers_frame_buffer_is_kept_off_huge_pages():
    """numpy advises transparent huge pages for arrays of 4 MB and more; the episode writer's in-memory frame buffer
    opts out (`memory.small_pages`: huge-page faults stalled a mix for 10-30 ms after a render). This catches the
    call dropped or advising the wrong range: the pages inside the buffer must carry the kernel's `nh` flag."""
    import numpy as np

    from voicegen.podcast.mix import EpisodeWriter

    writer = EpisodeWriter(None, stereo=True)
    writer.add_turn(np.full(4800, 0.1, np.float32), pan=0.2)
    buffer = writer._buffer
    assert buffer.nbytes >= 4 << 20  # large enough for numpy to have advised huge pages
    start = buffer.__array_interface__["data"][0]
    for address in (start + 8192, start + buffer.nbytes // 2, start + buffer.nbytes - 8192):
        assert "nh" in _vm_flags(address)
    writer.close()
