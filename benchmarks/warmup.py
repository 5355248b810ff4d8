"""Compiled warm-up, cold and from the cache: `engine.warmup()` in two fresh processes sharing one empty compile
cache directory (the first compiles and fills it, the second should load from it).

Each process builds Engine(device, Performance(compile=True, dtype=...)) and runs engine.warmup(); its
WarmupReport (seconds, shapes, cache hits and misses) is recorded. The ratio cached / cold is issue 11's figure
(goal <= 20%).

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
print(json.dumps({{"load_s": load, "warmup_s": r.seconds, "shapes": [list(s) for s in r.shapes],
    "cache_hits": r.cache_hits, "cache_misses": r.cache_misses, "cache_dir": r.cache_dir}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    dtype = "None" if args.dtype == "float32" else f"torch.{args.dtype}"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"warmup-{args.device}-{datetime.date.today()}.json"
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
    print(f"cold {runs[0]['warmup_s']:.1f} s, cached {runs[1]['warmup_s']:.1f} s "
          f"({report['cached_over_cold']:.0%}; hits {runs[1]['cache_hits']}, misses {runs[1]['cache_misses']}); {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
