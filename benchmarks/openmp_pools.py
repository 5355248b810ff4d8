"""Does another thread's OpenMP pool slow rendering on the CPU? (It did: benchmarks/RESULTS.md, "one OpenMP pool".)

torch runs a large CPU operation as an OpenMP parallel region, and libgomp gives each thread that starts one a pool of
worker threads, kept for the thread's life. With more pool threads in the process than CPUs, libgomp stops spinning
between parallel regions (its "throttled" spin count), so each of the renderer's many small regions waits for its
workers to wake up. This renders the same short sentences three ways, in one process, same engine:
  alone           only the rendering thread has a pool
  second pool     another thread has run one large torch operation and is still alive (idle)
  pool gone       that thread has exited (its pool with it)
and, for the cause found in the server, how many threads one `engine.plan` call adds to the thread it runs in.

Usage: python benchmarks/openmp_pools.py [--rounds 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["Hello.", "Sure.", "Thanks.", "Right.", "Okay.", "Indeed.", "Wonderful.", "Goodbye."]


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from voicegen import Engine
    from voicegen.engine import Request

    engine = Engine(device="cpu")
    engine.synthesize("Warm up.", "jf_alpha")

    def render_round() -> float:
        """Median seconds to render one short sentence, on this (the main) thread."""
        times = []
        for word in WORDS:
            plan = engine.plan(Request(word, "jf_alpha", seed=0))
            start = time.perf_counter()
            engine.renderer.render(plan.items)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    def plan_threads(voice: str) -> int:
        """Threads that exist while one `engine.plan` runs in a fresh thread, beyond those before it and itself."""
        time.sleep(0.3)  # threads of an earlier call's exited thread are gone
        before, seen = thread_count(), {}

        def job():
            engine.plan(Request("Hello there, how are you today?", voice))
            seen["n"] = thread_count() - before - 1

        t = threading.Thread(target=job)
        t.start()
        t.join()
        return seen["n"]

    result = {"alone": [], "second_pool": [], "pool_gone": []}
    for _ in range(args.rounds):
        result["alone"].append(render_round())
        release = threading.Event()

        def hold_pool():
            torch.randn(1_000_000).mul_(2)  # one parallel region: this thread now has an OpenMP pool
            release.wait()

        holder = threading.Thread(target=hold_pool)
        holder.start()
        time.sleep(0.3)
        result["second_pool"].append(render_round())
        release.set()
        holder.join()
        time.sleep(0.3)
        result["pool_gone"].append(render_round())
    medians = {k: float(np.median(v)) for k, v in result.items()}
    out = {
        "date": datetime.date.today().isoformat(),
        "command": "python benchmarks/openmp_pools.py " + f"--rounds {args.rounds}",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0]},
        "seconds_per_sentence": result, "medians": medians,
        "second_pool_vs_alone": medians["second_pool"] / medians["alone"],
        "threads_added_by_plan": {v: plan_threads(v) for v in ("jf_alpha", "jf_alpha+jm_kumo")},
    }
    path = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"openmp-pools-{out['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"seconds per sentence (median): alone {medians['alone']:.3f}, another thread's pool alive "
          f"{medians['second_pool']:.3f} (x{out['second_pool_vs_alone']:.2f}), after it exits {medians['pool_gone']:.3f}")
    print(f"threads one engine.plan adds to its thread: {out['threads_added_by_plan']}; JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
