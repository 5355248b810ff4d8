"""The renderer: the loaded network on one device, turning token items into audio in as few, as full, forward
passes as it can. Language-blind (no text, no voice names), so several engines can share one.

For a set of items (token ids, a style row, speed, noise seed):
1. Token phase: items in token-count order, padded to token buckets, in batches within a token budget
   (`voicegen.batching.token_batches`); durations, then frames (alignment and the shared BiLSTM).
2. Frame phase (~95% of the compute): batches by frame bucket within a frame budget
   (`voicegen.batching.frame_batches`), at their exact size or, for CUDA graphs and static compilation, at a
   bucket shape.
3. Each item's audio is cut back to its own length.

Noise for the harmonic source is drawn per item from a generator seeded by the item's seed, so an item's audio
does not depend on what else shares its batch. Calls from several threads go through one worker thread
(`voicegen.worker.BatchWorker`), which renders whatever is waiting as one set of batches.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import torch

from .batching import FrameBatch, TOKEN_BUCKETS, bucket_for, frame_batches, frame_buckets, token_batches
from .constants import HIDDEN_DIM, MAX_PHONEMES, PAD_ID, SAMPLES_PER_FRAME, SPEED_RANGE, STYLE_DIM
from .model import KokoroNetwork
from .performance import Performance, resolve_device
from .seeds import check_seed, fresh_seed
from .worker import BatchWorker

RECOMPILE_LIMIT = 64
"""Compiled graphs allowed per function. CUDA compiles one static graph per bucket (~17 frame buckets x a few row
counts); the CPU compiles with symbolic sizes (a handful). Past torch's default of 8, new shapes would silently run
eagerly."""


def check_speed(speed) -> float:
    """A speaking rate in SPEED_RANGE as a float; ValueError (naming the range) for anything else."""
    lo, hi = SPEED_RANGE
    if isinstance(speed, bool) or not isinstance(speed, (int, float, np.floating, np.integer)) or not (
        np.isfinite(speed) and lo <= speed <= hi
    ):
        raise ValueError(f"speed must be a number from {lo} to {hi} (1.0 is normal); got {speed!r}")
    return float(speed)


@dataclass
class Item:
    """One chunk for the network: token ids (vocabulary ids without the wrapping pads, 1..510 of them), its style
    row (256,), speed, pitch shift in semitones, and the seed of its source noise; `noise=False` renders the
    source without noise (as the ONNX export does), whatever the seed.

    Filled in by `Renderer.render`: `durations` (T + 2,) int64 frames per token on the CPU, wrapping pads
    included; `audio` (600 * durations.sum(),) float32; `started`, the `time.monotonic()` at which the worker
    began the turn that rendered it (a server's queue wait is `started` minus the time it submitted the item).
    """

    tokens: list[int]
    style: torch.Tensor
    speed: float = 1.0
    seed: int = 0
    noise: bool = True
    pitch: float = 0.0
    durations: torch.Tensor | None = field(default=None, repr=False)
    audio: np.ndarray | None = field(default=None, repr=False)
    started: float | None = field(default=None, repr=False)
    _frames: int = field(default=0, repr=False)
    _x: torch.Tensor | None = field(default=None, repr=False)  # (512, frames): shared-BiLSTM features
    _asr: torch.Tensor | None = field(default=None, repr=False)  # (512, frames): aligned text features


@dataclass
class RenderStats:
    """Counters since the renderer was made (for benchmarks, tuning and tests). A plain record: the duplicates
    tool pairs its field list with other dataclasses' by shape alone."""

    items: int = 0
    token_batches: int = 0
    frame_batches: int = 0
    padded_frames: int = 0
    valid_frames: int = 0
    shapes: set = field(default_factory=set)
    turn_items: Counter = field(default_factory=Counter)  # {items in a worker turn: turns}
    batch_items: Counter = field(default_factory=Counter)  # {items in a frame-phase batch: batches}


class Renderer:
    """The network on a device with its performance options; renders `Item`s in batches. Make one and reuse it;
    it is thread-safe (one worker thread renders for every caller).

    Args:
        weights: None for the built-in Kokoro-82M v1.0 weights, or a path to a Kokoro v1.0 `.onnx`, official
            `.pth` or our `.safetensors` file; or an already loaded `KokoroNetwork` (moved to `device`).
        device: "cpu", "cuda", ... (default: CUDA if available, else the CPU).
        performance: compile, reduced precision, CUDA graphs and batch budgets (`voicegen.Performance`).
    """

    def __init__(
        self,
        weights: str | PathLike | KokoroNetwork | None = None,
        device: str | torch.device | None = None,
        performance: Performance | None = None,
    ):
        from .weights import load_network

        self.device = resolve_device(device)
        self.performance = (performance or Performance()).check(self.device)
        if isinstance(weights, KokoroNetwork):
            self.network = weights.eval().to(self.device)
        else:
            self.network = load_network(weights, self.device)
        self.frame_buckets = frame_buckets()
        self.stats = RenderStats()
        perf = self.performance
        self._static_shapes = perf.cuda_graphs or (perf.compile and self.device.type != "cpu")
        self._render = self.network.render
        if perf.compile:
            import torch._dynamo.config as dynamo_config

            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
            self._render = torch.compile(self.network.render, dynamic=self.device.type == "cpu")
        self._graphs = None
        if perf.cuda_graphs:
            from .model.cuda_graphs import GraphCache

            self._graphs = GraphCache(self._render, self.device, perf.dtype)
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

    def close(self) -> None:
        """Stop the worker thread (after the batch in flight). Later calls raise; idempotent."""
        self._worker.close()

    # ---------------------------------------------------------------- batched rendering (worker thread)
    @torch.inference_mode()
    def _render_now(self, items: list[Item]) -> None:
        started = time.monotonic()
        for it in items:
            it.started = started
        self.stats.items += len(items)
        self.stats.turn_items[len(items)] += 1
        for batch in token_batches([len(it.tokens) for it in items], self.performance.max_batch_tokens):
            self._token_phase([items[i] for i in batch])
        plans = frame_batches([it._frames for it in items], self.performance.max_batch_frames, self.frame_buckets,
                              static=self._static_shapes)
        for plan in plans:
            self._frame_phase(plan, [items[i] for i in plan.items])

    def _token_phase(self, batch: list[Item]) -> None:
        self.stats.token_batches += 1
        lengths = torch.tensor([len(it.tokens) + 2 for it in batch])
        size = bucket_for(int(lengths.max()), TOKEN_BUCKETS)
        tokens = torch.full((len(batch), size), PAD_ID, dtype=torch.long)
        for i, it in enumerate(batch):
            tokens[i, 1 : len(it.tokens) + 1] = torch.tensor(it.tokens)
        dev = self.device
        style = torch.stack([it.style for it in batch]).to(dev)
        speed = torch.tensor([it.speed for it in batch], device=dev)
        phase = self.network.encode(tokens.to(dev), lengths, style, speed)
        frames = self.network.align(phase, style)
        durations = phase.durations.cpu()
        for i, it in enumerate(batch):
            it._frames = int(frames.frame_lengths[i])
            it.durations = durations[i, : lengths[i]]
            it._x = frames.x[i, :, : it._frames]
            it._asr = frames.asr[i, :, : it._frames]

    def _frame_phase(self, plan: FrameBatch, batch: list[Item]) -> None:
        self.stats.frame_batches += 1
        self.stats.batch_items[len(batch)] += 1
        dev, rows, frames = self.device, plan.rows, plan.frames
        x = torch.zeros(rows, HIDDEN_DIM, frames, device=dev)
        asr = torch.zeros(rows, HIDDEN_DIM, frames, device=dev)
        lengths = torch.zeros(rows, dtype=torch.long)
        style = torch.zeros(rows, STYLE_DIM, device=dev)
        pitch = torch.tensor([it.pitch for it in batch] + [0.0] * (rows - len(batch)), device=dev)
        for i, it in enumerate(batch):
            x[i, :, : it._frames] = it._x
            asr[i, :, : it._frames] = it._asr
            lengths[i] = it._frames
            style[i] = it.style.to(dev)
        noise = None
        # compiled: always a noise tensor (zeros for items without noise), so "no noise" needs no graph of its own
        if self.performance.compile or any(it.noise for it in batch):
            noise = torch.zeros(rows, frames * SAMPLES_PER_FRAME)
            for i, it in enumerate(batch):
                if it.noise:
                    g = torch.Generator().manual_seed(it.seed)
                    noise[i, : it._frames * SAMPLES_PER_FRAME] = torch.randn(it._frames * SAMPLES_PER_FRAME, generator=g)
            noise = noise.to(dev, non_blocking=True)
        self.stats.padded_frames += plan.padded_frames
        self.stats.valid_frames += int(lengths.sum())
        self.stats.shapes.add((rows, frames))
        dtype = self.performance.dtype
        if self._graphs is not None:
            audio = self._graphs.run(x, asr, style, lengths.to(dev), noise, pitch)
        else:
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                audio = self._render(x, asr, style, lengths.to(dev), noise, pitch)
        audio = audio.float().cpu().numpy()
        for i, it in enumerate(batch):
            it.audio = audio[i, : it._frames * SAMPLES_PER_FRAME].copy()
            it._x = it._asr = None
