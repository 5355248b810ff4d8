"""The CPU default path against onnxruntime, interleaved: rounds of (onnxruntime, voicegen's default, voicegen with
direct convolutions) over the same corpus in one process, so that the machine's drift (runs of the full benchmark
on this shared 2-core machine moved onnxruntime by 5-10% between runs) falls on every side alike.

Why: issue 11 item 7 asks the default path to reach >= 1.0x onnxruntime on a CPU without AVX-512 or AMX. One
pass per mode (benchmarks/throughput.py) cannot resolve a ratio near 1.0 here; alternating rounds can.

Modes, all on the throughput benchmark's corpus (benchmarks/throughput.py: `build_corpus`, its chunks):
  onnx-b1      onnxruntime on the int8 file, one chunk at a time (its only mode)
  default      `Engine(device="cpu")`: batched, eager float32, the long convolutions through the FFT (`fft_convs`)
  direct       `Performance()`: the same with direct convolutions (the default before fft_convs)

Usage (held to AVX2, as issue 11 asks; RESULTS.md says which figures used it):
  FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
      python benchmarks/cpu_vs_onnx.py --minutes 1 --rounds 3 --out benchmarks/results/cpu-vs-onnx-avx2-<date>.json
Prints x real time per mode and round, and the median over rounds of each round's ratio to onnxruntime.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from conv_kernels import ENV  # noqa: E402  (the kernel libraries' instruction-set switches)
from throughput import build_corpus, chunks_of, render_all, seconds  # noqa: E402

from voicegen import Engine, Performance  # noqa: E402
from voicegen.constants import SAMPLE_RATE  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1.0, help="approximate minutes of audio in the corpus")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="JSON path (default benchmarks/results/cpu-vs-onnx-<date>.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from voicegen.eval.reference import OnnxReference

    engines = {"default": Engine(device="cpu"), "direct": Engine(device="cpu", performance=Performance())}
    assert engines["default"].renderer.performance.fft_convs
    items = chunks_of(engines["default"], build_corpus(args.minutes))
    onnx = OnnxReference(threads=args.threads)

    def run_onnx() -> float:
        return sum(len(onnx(it.tokens, it.style.numpy(), it.speed)) for it, _ in items) / SAMPLE_RATE

    def run_engine(name: str):
        return lambda: seconds(render_all(engines[name], items, batch_one=False))

    modes = {"onnx-b1": run_onnx, "default": run_engine("default"), "direct": run_engine("direct")}
    for fn in modes.values():  # warm-up: every mode once, untimed
        audio_s = fn()
    rounds = []
    for r in range(args.rounds):
        row = {}
        for name, fn in modes.items():
            start = time.perf_counter()
            audio_s = fn()
            row[name] = audio_s / (time.perf_counter() - start)
        rounds.append(row)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f}x" for k, v in row.items())
              + f"; default/onnx {row['default'] / row['onnx-b1']:.3f}", flush=True)
    summary = {
        name: {"x_realtime_median": statistics.median(r[name] for r in rounds),
               "vs_onnx_median": statistics.median(r[name] / r["onnx-b1"] for r in rounds)}
        for name in modes
    }
    summary["default"]["vs_direct_median"] = statistics.median(r["default"] / r["direct"] for r in rounds)
    for name, s in summary.items():
        print(f"{name:8s} {s['x_realtime_median']:.2f}x real time, {s['vs_onnx_median']:.3f}x onnxruntime (median of "
              f"{args.rounds} rounds)")
    date = datetime.date.today().isoformat()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"cpu-vs-onnx-{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "environment": {k: os.environ.get(k) for k in ENV},
        "machine": f"CPU x{args.threads} threads, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "corpus": {"chunks": len(items), "audio_s": audio_s},
        "rounds": rounds,
        "summary": summary,
    }, indent=1))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
