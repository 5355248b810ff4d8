"""CUDA-graph capture of the frame phase, one graph per (batch rows, frames) bucket.

A captured graph replays every kernel of the frame phase with one launch, which removes the per-kernel CPU
overhead that dominates small batches on a fast GPU. The callable captured is whatever the renderer runs (compiled
with symbolic sizes, so a new bucket costs a capture, not a compile). Inputs are copied into static buffers before
replay; the output buffer is copied out (the next replay overwrites it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..constants import HIDDEN_DIM, STYLE_DIM


class GraphCache:
    """One captured CUDA graph of `call` (KokoroNetwork.render's signature: x, asr, style, lengths, seeds, pitch)
    per (rows, frames) shape; all graphs share one memory pool."""

    def __init__(self, call: Callable, device: torch.device, warmup: int = 2):
        if device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.call = call
        self.device = device
        self.warmup = warmup
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, dict, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def _run(self, static: dict) -> torch.Tensor:
        return self.call(static["x"], static["asr"], static["style"], static["lengths"], static["seeds"], static["pitch"])

    def capture(self, rows: int, frames: int) -> None:
        """Warm up and capture the graph for one shape (also done lazily by `run`)."""
        dev = self.device
        static = {
            "x": torch.zeros(rows, HIDDEN_DIM, frames, device=dev),
            "asr": torch.zeros(rows, HIDDEN_DIM, frames, device=dev),
            "style": torch.zeros(rows, STYLE_DIM, device=dev),
            "lengths": torch.full((rows,), frames, dtype=torch.long, device=dev),
            "seeds": torch.zeros(rows, dtype=torch.long, device=dev),
            "pitch": torch.zeros(rows, device=dev),
        }
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

    def run(self, x, asr, style, lengths, seeds, pitch) -> torch.Tensor:
        """Same contract as KokoroNetwork.render (seeds and pitch required); returns a fresh tensor."""
        key = (x.shape[0], x.shape[-1])
        if key not in self.graphs:
            self.capture(*key)
        graph, static, out = self.graphs[key]
        for name, value in (("x", x), ("asr", asr), ("style", style), ("lengths", lengths), ("seeds", seeds),
                            ("pitch", pitch)):
            static[name].copy_(value)
        graph.replay()
        return out.clone()
