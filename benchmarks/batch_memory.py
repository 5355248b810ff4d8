"""Peak memory of each token-phase and frame-phase batch of a long text, above the resident memory before it.

`benchmarks/memory.py` gives a whole command's peak; this says which batches make it. The text is rendered window
by window as `voicegen say` does (`voicegen.longform.write_long`, CPU); around every token-phase and frame-phase
batch the C heap's free pages are returned (`malloc_trim`), the kernel's peak-RSS mark is reset
(/proc/self/clear_refs) and the peak read after the batch (VmHWM), with the batch's time. The frame phase runs on
the renderer's worker thread, as in the command.

Usage:
  python benchmarks/batch_memory.py --chars 2000 --speed 4 --tokens 8192,2048
Writes benchmarks/results/batch-memory-<date>.json (or --out) and prints the worst batches per budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> tuple[int, int]:
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["VmRSS"].split()[0]) // 1024, int(status["VmHWM"].split()[0]) // 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(engine, text: str, speed: float, tokens: int) -> dict:
    from voicegen.engine import Request
    from voicegen.longform import write_long
    from voicegen.memory import release_free_memory

    renderer = engine.renderer
    renderer.performance = dataclasses.replace(renderer.performance, max_batch_tokens=tokens)
    token_phase, frame_phase = renderer._token_phase, renderer._frame_phase
    rows = []

    def timed(phase, fn):
        def wrapper(*args):  # token phase: (batch,); frame phase: (plan, batch, store_x, store_asr)
            release_free_memory()
            _reset_peak()
            base, start = _rss_mb()[0], time.perf_counter()
            out = fn(*args)
            rows.append({"phase": phase, "rows": len(args[0] if phase == "token" else args[1]), "base_mb": base,
                         "peak_mb": _rss_mb()[1], "seconds": round(time.perf_counter() - start, 3)})
            return out
        return wrapper

    renderer._token_phase, renderer._frame_phase = timed("token", token_phase), timed("frame", frame_phase)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            write_long(engine, Request(text, speed=speed, seed=0), Path(tmp) / "out.wav")
    finally:
        renderer._token_phase, renderer._frame_phase = token_phase, frame_phase
    summary = {}
    for phase in ("token", "frame"):
        sel = [r for r in rows if r["phase"] == phase]
        above = [r["peak_mb"] - r["base_mb"] for r in sel]
        summary[phase] = {"batches": len(sel), "max_above_base_mb": max(above), "median_above_base_mb": sorted(above)[len(above) // 2],
                          "seconds": round(sum(r["seconds"] for r in sel), 2)}
    return {"tokens": tokens, "summary": summary, "batches": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=4.0)
    parser.add_argument("--tokens", default="8192,2048", help="token budgets to compare, in this order")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from memory import prose

    import torch

    from voicegen import Engine

    text = prose(args.chars)
    engine = Engine(device="cpu")
    runs = [measure(engine, text, args.speed, int(t)) for t in args.tokens.split(",")]
    import voicegen

    result = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "code": str(Path(voicegen.__file__).parent),
              "torch": torch.__version__, "chars": len(text), "speed": args.speed,
              "command": "python benchmarks/batch_memory.py " + " ".join(sys.argv[1:]), "runs": runs}
    out = Path(args.out or ROOT / f"benchmarks/results/batch-memory-{result['date']}.json")
    out.write_text(json.dumps(result, indent=1))
    for run in runs:
        s = run["summary"]
        print(f"tokens {run['tokens']}: token phase {s['token']['batches']} batches, peak +{s['token']['max_above_base_mb']} MB "
              f"(median +{s['token']['median_above_base_mb']}), {s['token']['seconds']} s; frame phase {s['frame']['batches']} "
              f"batches, peak +{s['frame']['max_above_base_mb']} MB (median +{s['frame']['median_above_base_mb']}), "
              f"{s['frame']['seconds']} s")
    print("JSON:", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
