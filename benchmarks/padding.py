"""Padding of the static-shape frame plan (what CUDA graphs replay): padded frames over valid frames for the
throughput benchmark's corpus, at a frame budget, with this checkout's frame buckets. No GPU needed: the items'
frame counts come from the token phase on the CPU (durations are the same on any device up to rounding), then only
the planner runs.

Usage:
  python benchmarks/padding.py --minutes 11.8 --budget 16384     # the CUDA benchmark's corpus and budget
Prints the buckets, batches, shapes and padding; writes benchmarks/results/padding-<date>.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import build_corpus, chunks_of  # noqa: E402

from voicegen import Engine, Performance  # noqa: E402
from voicegen.batching import frame_batches, frame_buckets, token_batches  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=11.8)
    ap.add_argument("--budget", type=int, default=16384, help="frames per batch (CUDA's on a 24 GB+ card: 16384)")
    ap.add_argument("--min-rows", type=int, default=2, help="2: the compiled path's setting")
    ap.add_argument("--out")
    args = ap.parse_args()
    engine = Engine(device="cpu", performance=Performance())
    items = [item for item, _ in chunks_of(engine, build_corpus(args.minutes))]
    renderer = engine.renderer
    with torch.inference_mode():
        for batch in token_batches([len(it.tokens) for it in items], renderer.performance.max_batch_tokens):
            renderer._token_phase([items[i] for i in batch])  # sets each item's frame count
    counts = [it._frames for it in items]
    buckets = frame_buckets()
    plans = frame_batches(counts, args.budget, buckets, static=True, min_rows=args.min_rows)
    valid = sum(counts)
    padded = sum(p.rows * p.frames for p in plans)
    shapes = sorted({(p.rows, p.frames) for p in plans})
    out = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/padding.py " + " ".join(sys.argv[1:]),
        "buckets": list(buckets),
        "items": len(counts), "valid_frames": valid, "padded_frames": padded,
        "padding_overhead": round(padded / valid - 1, 4),
        "batches": len(plans), "shapes": shapes, "budget": args.budget, "min_rows": args.min_rows,
    }
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"padding-{out['date']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"buckets {buckets}")
    print(f"{len(counts)} items, {valid} valid frames; static plan at {args.budget} frames: {len(plans)} batches, "
          f"{len(shapes)} shapes, padded {padded} (+{100 * out['padding_overhead']:.1f}%); JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
