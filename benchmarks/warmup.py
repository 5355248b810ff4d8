"""Compiled warm-up, cold and from the cache: `engine.warmup()` in two fresh processes sharing one empty compile
cache directory (the first compiles the frame phase's graphs and saves them there, the second loads them).

Each process builds Engine(device, Performance(compile=True, dtype=...)) and runs engine.warmup(); its
WarmupReport (seconds; graphs loaded and compiled, with their seconds; shapes run; inductor cache hits and misses)
is recorded, and then the frame phase at every warm-up shape is timed once more (`after_s`: what a first request
would still pay; it should be close to a second run). The ratio cached / cold warm-up is issue 11's figure (goal
<= 20%).

Usage: python benchmarks/warmup.py [--device cpu] [--dtype float32|bfloat16] [--out JSON]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {root!r})
from voicegen import Engine, Performance
t0 = time.perf_counter()
engine = Engine(device={device!r}, performance=Performance(compile=True, dtype={dtype}))
load = time.perf_counter() - t0
r = engine.warmup()
after = {{}}
for rows, frames in r.shapes:  # what a request at each warm-up shape pays now, twice
    times = []
    for _ in range(2):
        t = time.perf_counter()
        engine.renderer._worker_free_call(rows, frames)
        times.append(time.perf_counter() - t)
    after[f"{{rows}}x{{frames}}"] = times
print(json.dumps({{"load_s": load, "warmup_s": r.seconds, "report": str(r), "shapes": [list(s) for s in r.shapes],
    "shapes_run": [list(s) for s in r.shapes_run], "graphs_loaded": r.graphs_loaded,
    "graphs_compiled": r.graphs_compiled, "graph_load_s": r.load_s, "graph_compile_s": r.compile_s,
    "load_failures": r.load_failures, "cache_hits": r.cache_hits, "cache_misses": r.cache_misses,
    "cache_dir": r.cache_dir, "after_s": after}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--label", default=None, help="suffix of the default JSON name")
    args = parser.parse_args()
    dtype = "None" if args.dtype == "float32" else f"torch.{args.dtype}"
    name = f"warmup-{args.device}-{datetime.date.today()}" + (f"-{args.label}" if args.label else "")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"{name}.json"
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
        for name in ("cold", "cached"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), device=args.device, dtype=dtype)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            run = json.loads(proc.stdout.strip().splitlines()[-1]) | {"run": name, "process_s": time.perf_counter() - t0}
            runs.append(run)
            print(json.dumps(run), flush=True)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "device": args.device,
              "dtype": args.dtype, "load_average": os.getloadavg(), "runs": runs,
              "cached_over_cold": runs[1]["warmup_s"] / runs[0]["warmup_s"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"{'run':8} {'warm-up s':>9} {'loaded':>6} {'compiled':>8} {'load s':>6} {'compile s':>9}  "
          "per shape after warm-up: first / second call s")
    for run in runs:
        firsts = ", ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in run["after_s"].items())
        print(f"{run['run']:8} {run['warmup_s']:9.1f} {run['graphs_loaded']:6d} {run['graphs_compiled']:8d} "
              f"{run['graph_load_s']:6.1f} {run['graph_compile_s']:9.1f}  {firsts}")
    print(f"cached / cold: {report['cached_over_cold']:.1%}; {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
