"""Long texts in bounded memory: rendered a window of chunks at a time, in order, and streamed to a file.

`Engine.synthesize` holds a whole text at once: every chunk's frame features between the renderer's two phases,
every chunk's audio, then the joined `Audio`. Right for a page, wrong for a book. Here the text is planned once
(`engine.plan`; the frontend is cheap, about 2 s for 20,000 characters on 2 shared cores, under 1% of the render)
and then rendered a window of about `window_chars` characters at a time with the engine's public steps
(`engine.renderer.render`, `engine.assemble`). Each window's Audio is handed on and dropped, so memory depends on
the window, not on the length of the text:

    for part in render_windows(engine, Request(text, seed=0)):   # one Audio per window, in order
        ...                                                       # times count from the start of the text
    write_long(engine, Request(text), "book.flac")                # the same, streamed to a file atomically

Chunks and seeds are those of `engine.synthesize` (the whole text is planned as one request), so durations and
word timings are identical; the samples are identical bit for bit when the text fits in one window, and within
the batch tolerance of README's "Determinism" otherwise (a window boundary changes which chunks share a batch).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import interrupts
from .audio import Audio, Segment, audio_format, stream_wav, write_audio_blocks
from .batching import text_windows
from .constants import SAMPLE_RATE
from .engine import Engine, Plan, Request
from .renderer import Item
from .text import Chunk

WINDOW_CHARS = 2000
"""Characters of text per window (about 3.5 minutes of speech): a few dozen chunks, enough to fill the token phase's
batches, while the window's features and audio stay near 100 MB."""

Progress = Callable[[int, int, float], None]
"""progress(chunks_done, chunks_total, seconds_of_audio_done); called as frame batches finish (from a watcher
thread, about every `PROGRESS_INTERVAL_S`) and after each window (from the rendering thread)."""

PROGRESS_INTERVAL_S = 0.5


def default_window_chars(engine: Engine) -> int:
    """WINDOW_CHARS, or more on a device with a larger frame budget (about two full frame batches per window:
    a character of English text is ~4 frames of 40 Hz), so that GPU batches stay full."""
    return max(WINDOW_CHARS, engine.renderer.performance.max_batch_frames // 2)


def windows(chunks: Sequence[Chunk], limit: int) -> list[tuple[int, int]]:
    """(lo, hi) ranges of chunk indices, in order, each closed once its text reaches `limit` characters."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"window_chars must be a positive integer; got {limit!r}")
    return text_windows([len(chunk.text) for chunk in chunks], limit)


class _Watch:
    """While a window renders, report progress as its items get their audio (the renderer fills `Item.audio`
    batch by batch), from a daemon thread that only reads."""

    def __init__(self, items: Sequence[Item], done: int, total: int, seconds: float, progress: Progress | None):
        self.items, self.done, self.total, self.seconds, self.progress = items, done, total, seconds, progress
        self._stop = threading.Event()
        self._thread = None
        self._last = None

    def _report(self) -> None:
        finished = [it.audio for it in self.items if it.audio is not None]
        state = (self.done + len(finished), self.total, self.seconds + sum(len(a) for a in finished) / SAMPLE_RATE)
        if state != self._last and state[0] < self.total:
            self._last = state
            self.progress(*state)

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL_S):
            self._report()

    def __enter__(self) -> _Watch:
        if self.progress is not None:
            self._thread = threading.Thread(target=self._run, name="voicegen-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def render_windows(engine: Engine, request: Request | Plan | str, *, window_chars: int | None = None,
                   progress: Progress | None = None) -> Iterator[Audio]:
    """Speak a text of any length window by window -> one Audio per window, in order.

    Each window but the last ends with its last chunk's pause, so the pieces join into the whole; segment and word
    times count from the start of the text. A request is planned whole (`engine.plan`: voice, speed, seed and
    something speakable are checked) before the first window renders; a `Plan` from `engine.plan` is used as it
    is. A window's items drop their audio once it is assembled, so only the window in hand is in memory.

    window_chars: characters per window (default `default_window_chars(engine)`).
    progress: called with (chunks done, chunks in the text, seconds of audio done) as the render goes.
    """
    plan = request if isinstance(request, Plan) else engine.plan(request)
    limit = default_window_chars(engine) if window_chars is None else window_chars
    ranges = windows(plan.chunks, limit)
    total, samples = len(plan.chunks), 0
    for lo, hi in ranges:
        interrupts.check()  # a Ctrl-C that compiled code swallowed: the next window would be rendered for nothing
        items = plan.items[lo:hi]
        with _Watch(items, lo, total, samples / SAMPLE_RATE, progress):
            engine.renderer.render(items)
        audio = engine.assemble(Plan(plan.request, plan.chunks[lo:hi], items), trailing_pause=hi < total)
        start = samples / SAMPLE_RATE
        audio.segments = [seg.shifted(start) for seg in audio.segments]
        for it in items:  # the window's audio now lives in `audio` only
            it.audio = None
        samples += len(audio.samples)
        if progress is not None:
            progress(hi, total, samples / SAMPLE_RATE)
        yield audio
        del audio


@dataclass
class Written:
    """What `write_long` wrote: the file, its length in seconds and its sentence segments (with word times)."""

    path: Path | None  # None: written to a stream (`stream_long`)
    duration: float
    segments: list[Segment] = field(default_factory=list)


def write_long(engine: Engine, request: Request | Plan | str, path: str | os.PathLike, *,
               window_chars: int | None = None, progress: Progress | None = None) -> Written:
    """Speak a text of any length straight into an audio file (format from the extension), window by window, in
    memory that does not grow with the text. The text is planned and checked first, so bad input (voice, speed,
    seed, nothing speakable, extension) raises ValueError before any file exists. The file is written under a
    temporary name and renamed when complete: on an error or Ctrl-C nothing is left at `path`."""
    audio_format(path)
    plan = request if isinstance(request, Plan) else engine.plan(request)
    result = Written(None, 0.0)
    result.path = write_audio_blocks(path, _blocks(engine, plan, result, window_chars, progress), SAMPLE_RATE)
    return result


def stream_long(engine: Engine, request: Request | Plan | str, out: BinaryIO, *, window_chars: int | None = None,
                progress: Progress | None = None) -> Written:
    """`write_long` into a byte stream (standard output, a pipe) as 16-bit WAV, each window as it is rendered
    (`voicegen.audio.stream_wav`); `Written.path` is None. Bad input raises ValueError before anything is
    written."""
    plan = request if isinstance(request, Plan) else engine.plan(request)
    result = Written(None, 0.0)
    stream_wav(out, _blocks(engine, plan, result, window_chars, progress), SAMPLE_RATE)
    return result


def _blocks(engine: Engine, plan: Plan, result: Written, window_chars: int | None,
            progress: Progress | None) -> Iterator[np.ndarray]:
    """The samples of `render_windows`, a window at a time; each window's segments and seconds added to `result`."""
    frames = 0
    for part in render_windows(engine, plan, window_chars=window_chars, progress=progress):
        result.segments.extend(part.segments)
        frames += len(part.samples)
        result.duration = frames / SAMPLE_RATE
        yield part.samples
