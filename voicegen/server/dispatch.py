"""From requests to the engine's scheduler: admission against a bounded queue, one renderer job per chunk with
priorities, chunks back in order as they complete, and cancellation.

Every chunk (about a sentence) of every active request is its own job for the renderer's worker
(`voicegen.worker.BatchWorker`), which gathers whatever is waiting into shared batches, so batches mix clients.
Priorities put each request's first chunk ahead of everything else (time to first audio stays low under load),
then the rest of the speech requests in arrival order, then podcasts. A request's first chunk is planned alone and
its other chunks are planned and queued once the first is rendered, so the first waits neither for its followers'
phonemes nor for their rendering. A turn holds at most `Performance.max_turn_items` chunks, so a new first sentence
waits for at most one turn.

The queue is bounded in chunks (queued or rendering; a request counts as `estimate_chunks` of its text until its
rest is planned): a request that would overflow it is refused with 429 and a Retry-After estimated from the recent
rendering rate; one that could never fit gets 413. A request whose client disconnects, or whose time runs out,
cancels its chunks that have not started rendering.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from ..audio import Audio
from ..engine import Engine, Plan
from ..renderer import Item
from .errors import ApiError

FIRST, REST, PODCAST = 0, 1, 2
"""Renderer priorities (lower first): a speech request's first chunk, its other chunks, podcast chunks."""


PLANNING_THREADS = 2
"""Threads that plan the rest of speech requests once their first chunks are rendered (the frontend is Python and
espeak: more threads would mostly wait for the GIL)."""


class Timeout(Exception):
    """A request ran past its deadline (its remaining chunks are cancelled)."""


class Cancelled(Exception):
    """A chunk's job was cancelled before it rendered (its request was cancelled)."""


class Dispatcher:
    """Admits requests against a queue of at most `max_queue` chunks and submits their items to the engine's
    renderer. Thread-safe; futures may complete in the renderer's worker thread."""

    def __init__(self, engine: Engine, max_queue: int):
        self.engine = engine
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when chunks leave the queue
        self._pending = 0
        self._done: deque[float] = deque(maxlen=256)  # completion times of recent chunks, for Retry-After
        self._planner = ThreadPoolExecutor(PLANNING_THREADS, thread_name_prefix="voicegen-plan")

    @property
    def pending(self) -> int:
        """Chunks admitted and not yet rendered or cancelled (the queue depth)."""
        return self._pending

    def reserve(self, n: int, force: bool = False) -> None:
        """Count `n` more chunks in the queue, or refuse: 413 if `n` alone exceeds it, else 429 with Retry-After
        (`reserve(0)`: 429 if the queue is full). `force`: count them without a check (the rest of a streamed request
        already admitted, once it is planned; a podcast's windows wait for room instead: `reserve_when_room`)."""
        with self._lock:
            if force:
                self._pending += n
                return
            if n > self.max_queue:
                raise ApiError(413, f"this request needs {n} chunks (sentences) and the server's queue holds "
                               f"{self.max_queue}; send shorter text", param="input", code="request_too_large")
            if self._pending + max(n, 1) > self.max_queue:
                retry = self.retry_after()
                raise ApiError(429, f"the server is busy ({self._pending} chunks queued, at most {self.max_queue}); "
                               f"retry in about {retry} s", type="rate_limit_error", code="rate_limit_exceeded",
                               headers={"Retry-After": str(retry)})
            self._pending += n

    def reserve_when_room(self, n: int, deadline: float, cancelled: Callable[[], bool]) -> None:
        """Count `n` more chunks once the queue has room for them (or is empty: a window larger than the queue
        goes alone), waiting meanwhile: how an admitted podcast queues its next window without pushing the queue
        past `max_queue` (where every new request would get 429). concurrent.futures' TimeoutError at `deadline`
        (time.monotonic()), CancelledError once `cancelled()`."""
        with self._room:
            while self._pending and self._pending + n > self.max_queue:
                if cancelled():
                    raise FutureCancelled()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FutureTimeout()
                self._room.wait(min(left, 0.25))
            self._pending += n

    def release(self, n: int) -> None:
        """Take back `n` reserved chunks that were never submitted."""
        with self._room:
            self._pending -= n
            self._room.notify_all()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained by half, from the recent completion rate (1 to 60)."""
        now = time.monotonic()
        recent = [t for t in self._done if now - t < 60]
        if len(recent) < 2:
            return 5
        rate = len(recent) / max(now - recent[0], 1e-3)
        return int(min(60, max(1, math.ceil(self._pending / 2 / rate))))

    def plan_later(self, plan: Callable[[], Plan]) -> Future:
        """Run `plan` (the rest of a request's frontend) in one of the planning threads -> its future."""
        return self._planner.submit(plan)

    def submit(self, items: Sequence[Item], priority: int) -> Future:
        """Queue reserved items for the renderer; the queue shrinks when the future is done or cancelled."""
        future = self.engine.renderer.submit(items, priority)
        future.add_done_callback(lambda f, n=len(items): self._finished(f, n))
        return future

    def _finished(self, future: Future, n: int) -> None:
        with self._room:
            self._pending -= n
            if not future.cancelled():
                self._done.append(time.monotonic())
            self._room.notify_all()


def estimate_chunks(text: str) -> int:
    """How many chunks a text will make, for admission before it is phonemized (>= 1): its sentences, counting one
    more for every `CHUNK_CHARS` characters of a long one. A request is admitted on this estimate and its reservation
    corrected once the rest of it is planned."""
    return max(1, sum(1 + len(s) // CHUNK_CHARS for s in _SENTENCE_END.split(text) if s.strip()))


CHUNK_CHARS = 400
"""Characters of unpunctuated text that about fill one chunk (510 phoneme symbols), for `estimate_chunks`."""
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+")


class SpeechJob:
    """One speech request in flight. Its first chunk, planned alone (`Engine.plan_parts`), is queued at once at
    priority FIRST; the rest of the text is planned once the first chunk is rendered (in the dispatcher's planning
    threads, while the client receives the first audio) and queued at priority REST, one job per chunk. So neither
    phonemizing the rest nor rendering it delays the first chunk, and time to first audio does not grow with the text
    (as `Engine.stream`); planning the rest alongside the first chunk's rendering measured no faster on the CPU,
    where it competes for the same cores (benchmarks/RESULTS.md).

    Admission reserves `estimate` chunks (`estimate_chunks`; 413 or 429 from `Dispatcher.reserve`); the reservation
    is corrected to the real count once the rest is planned.

    `chunks()` yields one Audio per chunk with times counted from the start of the request, each followed by its
    pause but the last; joined they are the whole request's audio.
    """

    def __init__(self, dispatcher: Dispatcher, first: Plan, deadline: float, *,
                 rest: Callable[[], Plan] | None = None, estimate: int = 1):
        self.dispatcher = dispatcher
        self.plan = first  # the first chunk's plan; the whole request's once the rest is planned
        self.deadline = deadline
        self.audio_seconds = 0.0
        self.first_audio: float | None = None  # time.monotonic() when the first chunk was rendered
        self.cancelled = False
        self._lock = threading.RLock()
        self._more = rest is not None
        self._rest: Future | None = None
        self._unsubmitted = max(estimate, len(first.items))  # reserved and not yet submitted
        dispatcher.reserve(self._unsubmitted)
        self.submitted = time.monotonic()
        self.futures: list[Future] = []
        self._submit(first.items, FIRST)
        self._queued: Future = Future()  # done when every chunk is submitted (or that failed)
        if rest is None:  # give back what the estimate reserved beyond the one chunk
            self.dispatcher.release(self._unsubmitted)
            self._unsubmitted = 0
            self._queued.set_result(None)
        else:
            self.futures[0].add_done_callback(lambda first: self._plan_rest(first, rest))

    @property
    def queue_wait(self) -> float | None:
        """Seconds the first chunk waited before its turn began (None until it began)."""
        started = self.plan.items[0].started
        return None if started is None else max(0.0, started - self.submitted)

    @property
    def tokens(self) -> int:
        return sum(len(item.tokens) for item in self.plan.items)

    def record(self, log) -> None:
        """Put the audio seconds sent and the chunks planned so far into the request's log (`logs.RequestLog`)."""
        log.audio_s = self.audio_seconds
        log.update(chunks=len(self.plan.items))

    def _submit(self, items: list[Item], priority: int) -> None:
        try:
            self.futures.append(self.dispatcher.submit(items, priority))
        except BaseException:  # the renderer is closed
            self.cancel()
            raise
        self._unsubmitted -= len(items)

    def _plan_rest(self, first: Future, rest: Callable[[], Plan]) -> None:
        """The first chunk is done: plan the rest in a planning thread (unless the job failed or was cancelled)."""
        with self._lock:
            if self.cancelled or first.cancelled() or first.exception() is not None:
                _settle(self._queued, Cancelled() if self.cancelled or first.cancelled() else first.exception())
                return
            self._rest = self.dispatcher.plan_later(rest)
            self._rest.add_done_callback(self._queue_rest)

    def _queue_rest(self, rest: Future) -> None:
        """The rest is planned: correct the reservation and queue it at priority REST, one job per chunk."""
        with self._lock:
            if self._queued.done():
                return
            try:
                if self.cancelled or rest.cancelled():
                    raise Cancelled()
                part = rest.result()
                extra = len(part.items) - self._unsubmitted
                if extra > 0:
                    self.dispatcher.reserve(extra, force=True)
                else:
                    self.dispatcher.release(-extra)
                self._unsubmitted = len(part.items)
                self.plan = Plan(self.plan.request, self.plan.chunks + part.chunks, self.plan.items + part.items)
                for item in part.items:
                    self._submit([item], REST)
            except BaseException as exc:  # noqa: BLE001 - handed to chunks()
                _settle(self._queued, exc)
                return
            _settle(self._queued, None)

    async def chunks(self):
        k, start = 0, 0.0
        while k < len(self.plan.items):
            await wait_future(self.futures[k], self.deadline)
            if k == 0:
                self.first_audio = time.monotonic()
                if self.cancelled:
                    raise Cancelled()
            more = k + 1 < len(self.plan.items) or (k == 0 and self._more)
            audio = assemble_chunk(self.plan, k, more)
            audio.segments = [seg.shifted(start) for seg in audio.segments]
            start += audio.duration
            self.audio_seconds = start
            self.plan.items[k].audio = None  # handed on; free it
            yield audio
            if k == 0:
                await wait_future(self._queued, self.deadline)  # the rest planned and queued
            k += 1

    def cancel(self) -> None:
        """Drop every chunk whose turn has not begun (those rendering finish and are discarded) and the planning of
        the rest if it has not begun. Idempotent."""
        with self._lock:
            self.cancelled = True
            for future in self.futures:
                future.cancel()
            if self._rest is not None:
                self._rest.cancel()
            if self._unsubmitted:
                self.dispatcher.release(self._unsubmitted)
                self._unsubmitted = 0


def _settle(future: Future, exc: BaseException | None) -> None:
    """Complete `future` with `exc` or None, unless it was cancelled meanwhile (a timeout while waiting for it)."""
    try:
        future.set_result(None) if exc is None else future.set_exception(exc)
    except InvalidStateError:
        pass


def assemble_chunk(plan: Plan, k: int, trailing_pause: bool) -> Audio:
    """Chunk k of a rendered plan as Audio (with its pause after it when more follows), times from 0."""
    from ..timing import assemble

    item = plan.items[k]
    return assemble(plan.chunks[k : k + 1], [item.durations], [item.audio], trailing_pause)


async def wait_future(future: Future, deadline: float) -> None:
    """Await a renderer future until `deadline` (time.monotonic()). Raises Timeout after it (the future is
    cancelled), Cancelled if the future was cancelled (by `SpeechJob.cancel`), or what rendering raised. Cancelling
    the awaiting task does not cancel the future: the caller decides (a disconnect cancels the whole job)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def settle(f: Future) -> None:
        if waiter.done():
            return
        if f.cancelled():
            waiter.set_exception(Cancelled())
        elif f.exception() is not None:
            waiter.set_exception(f.exception())
        else:
            waiter.set_result(None)

    def done(f: Future) -> None:
        try:
            loop.call_soon_threadsafe(settle, f)
        except RuntimeError:  # the event loop is gone (shutting down)
            pass

    future.add_done_callback(done)
    try:
        await asyncio.wait_for(waiter, timeout=max(deadline - time.monotonic(), 0))
    except asyncio.TimeoutError:
        future.cancel()
        raise Timeout() from None
