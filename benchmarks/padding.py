"""Frame-phase padding: how many frames the batch planner makes the device compute per frame of audio, on the
throughput benchmark's corpus (benchmarks/throughput.py), at static shapes (CUDA graphs) and at exact sizes.

A batch computes every row of its shape, empty or not, so padded frames / valid frames - 1 is the compute thrown
away (on a GPU whose frame phase is busy, throughput scales with it). The items' frame counts come from the token
phase, run once on the CPU (durations do not depend on the device beyond rounding).

The static plans are also made with finer frame buckets (`--per-octave`) and other per-batch costs (`--overheads`,
`voicegen.batching.STATIC_BATCH_OVERHEAD`: fewer padded frames against more batches; what a batch costs on a GPU is
for `throughput.py --ab overhead-N,buckets-N` to measure), and for the one-minute two-speaker script's 15 chunks
too (its frame phase is one call: its padding is what that call computes beyond the audio).

Usage: python benchmarks/padding.py [--minutes 10] [--overheads 1024,512,256,0] [--per-octave 2,4] [--out JSON]
Prints a table and writes benchmarks/results/padding-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from throughput import build_corpus, chunks_of  # noqa: E402
from token_phase import script_items  # noqa: E402

from voicegen import Engine, batching  # noqa: E402
from voicegen.batching import frame_batches, frame_buckets, static_rows  # noqa: E402


def frame_counts(minutes: float) -> list[int]:
    """Frames per chunk of throughput.py's corpus of about `minutes` (0: the one-minute script's chunks)."""
    engine = Engine(device="cpu")
    items = [item for item, _ in chunks_of(engine, build_corpus(minutes))] if minutes else script_items(engine)
    with torch.inference_mode():
        for lo in range(0, len(items), 16):
            engine.renderer._token_phase(items[lo : lo + 16])
    return [item._frames for item in items]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--overheads", default="1024,512,256,0",
                        help="per-batch costs (frames) the static plans are also made with (the first: as planned)")
    parser.add_argument("--per-octave", default="2,4",
                        help="frame buckets per octave the static plans are made with (batching.frame_buckets)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    overheads = [int(v) for v in args.overheads.split(",")]
    octaves = [int(v) for v in args.per_octave.split(",")]
    default = batching.STATIC_BATCH_OVERHEAD
    rows = []
    for corpus, minutes in (("corpus", args.minutes), ("script", 0.0)):
        frames = frame_counts(minutes)
        valid = sum(frames)
        print(f"{corpus}: {len(frames)} chunks, {valid} frames of audio")
        for static, min_rows, budgets in ((True, 2, (16384, 11520, 5632)), (False, 1, (16384, 200))):
            for budget in budgets:
                for per_octave in octaves if static else [batching.FRAME_BUCKETS_PER_OCTAVE]:
                    buckets = frame_buckets(per_octave=per_octave)
                    for overhead in overheads if static else [None]:
                        batching.STATIC_BATCH_OVERHEAD = default if overhead is None else overhead
                        plans = frame_batches(frames, budget, buckets, static=static, min_rows=min_rows)
                        padded = sum(p.padded_frames for p in plans)
                        rows.append({"corpus": corpus, "chunks": len(frames), "valid_frames": valid, "static": static,
                                     "budget": budget, "buckets_per_octave": per_octave,
                                     "static_shapes": sum(len(static_rows(b, budget, min_rows)) for b in buckets),
                                     "overhead": overhead, "batches": len(plans), "padded_frames": padded,
                                     "padding_overhead": padded / valid - 1,
                                     "shapes": [[p.rows, p.frames, len(p.items)] for p in plans]})
                        print(f"  {'static' if static else 'exact':6} budget {budget:6}, {per_octave} buckets/octave"
                              f"{'' if overhead is None else f', per-batch cost {overhead:5}'}: {len(plans):4} "
                              f"batches, padding {padded / valid - 1:6.1%}", flush=True)
    batching.STATIC_BATCH_OVERHEAD = default
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"padding-{datetime.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                               "static_batch_overhead": default, "plans": rows}, indent=1))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
