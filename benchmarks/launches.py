"""Kernel-launch benchmark: how many operations that launch a device kernel the eager token phase (ALBERT, duration
predictor, text encoder) and the alignment (durations to frames, the shared BiLSTM) dispatch, with CUDA's settings,
counted on the CPU, at this checkout and at a baseline revision.

On a GPU the eager token phase is launch-bound: on an H200 (benchmarks/RESULTS.md, seventeenth session) the first
audio of a streamed text took 39 ms of wall time for 8.5 ms of GPU time and 1,509 kernels, most of them launched one
by one by the host. Each launch costs the host microseconds whatever the kernel does, so fewer operations is a
saving that a CPU can measure exactly: this script runs the engine on the CPU with the token phase's CUDA settings
(`albert.HALF_PRECISION` and `layers.ONE_WAY_BILSTM` set for "cpu" to their "cuda" values; the text encoder's second
stream does not exist on a CPU, which changes no count) and counts, with a TorchDispatchMode, every aten operation
the stage dispatches except views, metadata and reads of a scalar (`NO_KERNEL`). A count is the number of kernels
to within what one aten operation launches on CUDA (a cuDNN LSTM call or attention is several; a host-to-device
copy is one copy, not a kernel); it says nothing of the compiled frame phase, which a CUDA graph replays in one
launch.

Workloads: the first chunk of a streamed two-sentence text (`throughput.first_audio`'s text, one token batch of
one row), and the one-minute two-speaker script's turns (throughput.py's script, each turn's token batches).
The counts are deterministic: one run of each revision, each in its own process.

Usage:
  python benchmarks/launches.py                      # this checkout vs main
  python benchmarks/launches.py --baseline HEAD~3
Writes benchmarks/results/launches-cpu-<date>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import before_after  # noqa: E402 - benchmarks/ is on sys.path (this script's directory, or the child's)

NO_KERNEL = {
    "view", "_unsafe_view", "transpose", "t", "expand", "slice", "select", "unsqueeze", "squeeze", "permute",
    "as_strided", "alias", "detach", "detach_", "split", "split_with_sizes", "chunk", "unbind", "narrow", "reshape",
    "_reshape_alias", "lift_fresh", "view_as_real", "view_as_complex", "is_nonzero", "item", "_local_scalar_dense",
    "resolve_conj", "resolve_neg", "empty", "empty_strided", "new_empty", "set_", "sym_size", "sym_stride",
}
"""aten operations that launch no kernel: views, metadata, allocation without initialisation, scalar reads (a read
of a device scalar is a copy and a synchronisation, not counted here)."""

STAGES = ("token_phase", "alignment", "token_batch_rest", "frame_batch_rest")
"""What is counted: `KokoroNetwork.encode`; `KokoroNetwork.align`; the rest of the renderer's token batch (inputs to
the device, durations back, packing the frames' features into the turn's store); the renderer's frame batch without
the network's call (gathering its inputs from the store, the valid samples back to the host). The frame phase itself
is not counted: on CUDA it is a graph replay (one launch, plus a copy of each input into the graph's buffers)."""

FIRST_TEXT = ("Time to first audio is what a listener waits for, take 1. "
              "The rest follows while they listen.")


def count(workload: str) -> dict:
    """In this process: the engine on the CPU with the token phase's CUDA settings -> {stage: {op: n} for each of
    `STAGES`, "token_batches": n, "items": n} for the workload's second run (the first builds what is kept between
    calls)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from voicegen import Engine
    from voicegen.model import KokoroNetwork, layers
    from voicegen.model.acoustic import albert

    for table in (albert.HALF_PRECISION, layers.ONE_WAY_BILSTM):
        table["cpu"] = table.get("cuda")
    counts = {stage: collections.Counter() for stage in STAGES}
    stage = [None]

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            returned_input = name in ("to", "_to_copy", "contiguous") and bool(args) and out is args[0]
            if stage[0] is not None and name not in NO_KERNEL and not returned_input:
                counts[stage[0]][name] += 1
            return out

    def staged(name, method):
        def run(*args, **kwargs):
            outer, stage[0] = stage[0], name
            try:
                return method(*args, **kwargs)
            finally:
                stage[0] = outer
        return run

    engine = Engine(device="cpu")
    batches = [0]
    renderer = engine.renderer
    token_phase = staged("token_batch_rest", renderer._token_phase)

    def counted_batch(batch):
        batches[0] += 1
        return token_phase(batch)

    renderer._token_phase = counted_batch
    renderer._pack = staged("token_batch_rest", renderer._pack)
    renderer._frame_phase = staged("frame_batch_rest", renderer._frame_phase)
    renderer._collect = staged("frame_batch_rest", renderer._collect)
    renderer._frame_run = staged(None, renderer._frame_run)  # on CUDA a graph replay: not counted
    encode, align = KokoroNetwork.encode, KokoroNetwork.align
    KokoroNetwork.encode, KokoroNetwork.align = staged("token_phase", encode), staged("alignment", align)
    items = [0]

    def run() -> None:
        if workload == "first-audio":
            first = next(engine.stream(FIRST_TEXT, seed=0))
            items[0] = 1 if len(first.samples) else 0
        else:
            from throughput import one_minute_script

            from voicegen.podcast.render import render_script

            script = one_minute_script()
            render_script(engine, script, seed=0)
            items[0] = len(script.turns)

    run()  # what is made once and kept (weights in float16, LSTM copies) is not what a call costs
    for c in counts.values():
        c.clear()
    batches[0] = 0
    with torch.inference_mode(), Counter():
        run()
    return {**{stage: dict(counts[stage]) for stage in STAGES}, "token_batches": batches[0], "items": items[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git revision of the 'before' package (default main)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/launches-cpu-<date>.json)")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        before_after.export(args.baseline, Path(tmp))
        for workload in ("first-audio", "script"):
            results[workload] = {"before": before_after.child(Path(tmp), "launches", f"count({workload!r})"),
                                 "after": before_after.child(before_after.ROOT, "launches", f"count({workload!r})")}
    summary = {}
    print(f"{'workload':12s} {'stage':17s} {'before':>7s} {'after':>7s} {'after/before':>12s}")
    for workload, pair in results.items():
        summary[workload] = {}
        for stage in STAGES:
            before, after = (sum(pair[k][stage].values()) for k in ("before", "after"))
            summary[workload][stage] = {"before": before, "after": after, "ratio": after / before}
            print(f"{workload:12s} {stage:17s} {before:7d} {after:7d} {after / before:12.3f}")
        per = {k: pair[k]["token_batches"] for k in ("before", "after")}
        print(f"{workload:12s} {'token batches':17s} {per['before']:7d} {per['after']:7d}")
    path = before_after.write_report("launches-cpu", args.baseline, args.out, summary=summary, counts=results,
                                     settings="albert.HALF_PRECISION and layers.ONE_WAY_BILSTM: CUDA's, on the CPU")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
