"""CUDA-graph capture of the frame phase, one graph per (batch rows, frames) bucket up to GRAPH_MAX_FRAMES (and,
behind `voicegen.model.layers.TOKEN_GRAPHS`, of the token phase's encoder per (rows, token bucket)).

A captured graph replays every kernel of the frame phase with one launch, which removes the per-kernel CPU
overhead that dominates small batches on a fast GPU. The callable captured is whatever the renderer runs (compiled
with symbolic sizes, so a new bucket costs a capture, not a compile). Inputs are copied into static buffers before
replay; the output buffer is copied out (the next replay overwrites it). The static input buffers come from the
caller (`inputs(rows, frames)`), laid out as its real batches are: compiled code guards on strides, so buffers of
another layout would need a graph of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..performance import CUDA_BATCH_FRAMES

NAMES = ("x", "asr", "style", "lengths", "seeds", "pitch")
TOKEN_NAMES = ("tokens", "lengths", "style", "speed")
"""The token phase's inputs (`KokoroNetwork.encode` with lengths on the device): tokens (rows, size)."""

TOKEN_GRAPH_MAX_TOKENS = 2048
"""Largest token batch (rows, padded to a power of two, x token bucket) whose encoder is captured: as for frames,
launches matter while the device's work per call is short; larger batches run the encoder directly, unpadded."""

ALBERT_NAMES = ("tokens", "valid")
"""ALBERT's inputs (`Albert.forward`): tokens (rows, size) int64, valid (rows, size) bool."""

ALBERT_GRAPH_MAX_TOKENS = 4096
"""Largest token batch (rows, padded to a power of two, x token bucket) whose ALBERT is captured
(`layers.ALBERT_GRAPHS`): each graph keeps its output, rows x tokens x 768 floats (12.6 MB at this limit)."""

GRAPH_MAX_FRAMES = CUDA_BATCH_FRAMES
"""Largest batch (rows x frames) that is captured: by default every bucket the largest CUDA batch budget allows.
A graph saves the CPU's kernel launches (~700 per call, a few milliseconds); measured on an H200 (benchmarks/
RESULTS.md, tenth session), capturing all 88 bucket shapes instead of those up to 4,096 frames rendered the
benchmark corpus at 1,173x real time instead of 888x, for a cached warm-up of 36 s instead of 19 s (every shape
runs twice and is captured) and 11.1 instead of 8.4 GB of peak GPU memory (each graph keeps its output buffer).
Larger batches than this run the callable directly."""


class GraphCache:
    """One captured CUDA graph of `call` per input shape (rows, size); all graphs share one memory pool.

    By default `call` has KokoroNetwork.render's signature (x, asr, style, lengths, seeds, pitch) and the shape is
    (rows, frames); `names` gives another signature (the token phase's: `TOKEN_NAMES`), whose first input's shape is
    then (rows, size). `inputs(rows, size)` -> the static input tensors on the device, one per name (their values
    only need to be valid: every replay copies the real inputs in). `call` returns a tensor or a tuple of tensors."""

    def __init__(self, call: Callable, device: torch.device, inputs: Callable[[int, int], tuple], warmup: int = 2,
                 max_frames: int | None = None, names: tuple[str, ...] = NAMES):
        if device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.call = call
        self.device = device
        self.inputs = inputs
        self.warmup = warmup
        self.names = names
        self.max_frames = GRAPH_MAX_FRAMES if max_frames is None else max_frames  # read now: a benchmark may set it
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, dict, object]] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def _run(self, static: dict):
        return self.call(*(static[name] for name in self.names))

    def capture(self, rows: int, frames: int) -> None:
        """Warm up and capture the graph for one shape (also done lazily by `run`)."""
        dev = self.device
        static = dict(zip(self.names, self.inputs(rows, frames)))
        stream = torch.cuda.Stream(dev)
        stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(stream):
            for _ in range(self.warmup):
                self._run(static)
        torch.cuda.current_stream(dev).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self._run(static)
        self.graphs[(rows, frames)] = (graph, static, out)

    def captures(self, rows: int, frames: int) -> bool:
        """Whether a batch of this shape runs as a captured graph (see GRAPH_MAX_FRAMES)."""
        return rows * frames <= self.max_frames

    def run(self, *inputs):
        """Same contract as `call` (for the frame phase: KokoroNetwork.render with seeds and pitch required);
        returns fresh tensors. Shapes that `captures` refuses run the callable directly."""
        key = (inputs[0].shape[0], inputs[0].shape[-1])
        if not self.captures(*key):
            return self.call(*inputs)
        if key not in self.graphs:
            self.capture(*key)
        graph, static, out = self.graphs[key]
        for name, value in zip(self.names, inputs):
            static[name].copy_(value)
        graph.replay()
        return tuple(t.clone() for t in out) if isinstance(out, tuple) else out.clone()
