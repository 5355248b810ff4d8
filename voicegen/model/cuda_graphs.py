"""CUDA-graph capture of the frame phase, one graph per (batch rows, frames) bucket up to GRAPH_MAX_FRAMES.

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

NAMES = ("x", "asr", "style", "lengths", "seeds", "pitch")

GRAPH_MAX_FRAMES = 4096
"""Largest batch (rows x frames) that is captured. A graph saves the CPU's kernel launches (~700 per call, a few
milliseconds), which matter only while the GPU's work per call is as short: a batch of 4096 frames is ~100 s of
audio and ~0.1 s of GPU time at 1000x real time. Larger batches run the callable directly, so warm-up does not
spend their compute three times over (two runs and the capture per shape: most of the 39 s a cached warm-up took
on an H100 with every bucket shape captured) and their output buffers are not held."""


class GraphCache:
    """One captured CUDA graph of `call` (KokoroNetwork.render's signature: x, asr, style, lengths, seeds, pitch)
    per (rows, frames) shape; all graphs share one memory pool. `inputs(rows, frames)` -> the six static input
    tensors on the device (their values only need to be valid: every replay copies the real inputs in)."""

    def __init__(self, call: Callable, device: torch.device, inputs: Callable[[int, int], tuple], warmup: int = 2,
                 max_frames: int | None = None):
        if device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.call = call
        self.device = device
        self.inputs = inputs
        self.warmup = warmup
        self.max_frames = GRAPH_MAX_FRAMES if max_frames is None else max_frames  # read now: a benchmark may set it
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, dict, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def _run(self, static: dict) -> torch.Tensor:
        return self.call(*(static[name] for name in NAMES))

    def capture(self, rows: int, frames: int) -> None:
        """Warm up and capture the graph for one shape (also done lazily by `run`)."""
        dev = self.device
        static = dict(zip(NAMES, self.inputs(rows, frames)))
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

    def run(self, x, asr, style, lengths, seeds, pitch) -> torch.Tensor:
        """Same contract as KokoroNetwork.render (seeds and pitch required); returns a fresh tensor. Shapes that
        `captures` refuses run the callable directly."""
        key = (x.shape[0], x.shape[-1])
        if not self.captures(*key):
            return self.call(x, asr, style, lengths, seeds, pitch)
        if key not in self.graphs:
            self.capture(*key)
        graph, static, out = self.graphs[key]
        for name, value in zip(NAMES, (x, asr, style, lengths, seeds, pitch)):
            static[name].copy_(value)
        graph.replay()
        return out.clone()
