"""Convolution kernels probe: the vocoder generator's residual convolutions (the bulk of the CPU frame phase) as
torch's `conv1d` (oneDNN) and as one matrix product per tap (`matmul` of the weights' tap slice with the shifted
input, summed: MKL's sgemm), float32, on the CPU at whatever instruction set the environment allows.

Why: issue 11 asks the default path to reach onnxruntime's speed on a machine without AVX-512 or AMX. If oneDNN's
float32 convolutions were far from the machine's arithmetic peak there, a better float32 kernel would be the way;
this measures how far. Run it twice, at the full instruction set and held to AVX2:

  python benchmarks/conv_kernels.py --out benchmarks/results/conv-kernels-cpu-<date>.json
  FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \
      python benchmarks/conv_kernels.py --out benchmarks/results/conv-kernels-cpu-avx2-<date>.json

With `--profile`, it also renders two sentences with the default engine under torch.profiler and reports which
share of the CPU time the convolutions take (oneDNN's `mkldnn_convolution`), the matrix products and the rest.

Since the ninth session also the way the default CPU engine runs the long ones: through the FFT
(`voicegen.model.fft_conv.fft_conv1d`, blocks of 64 samples at 256 channels and 128 at 128), and how much faster
than conv1d that is (`fft_vs_conv1d`; 3-tap kernels are measured too, though the engine runs them directly).
(`--profile` counts oneDNN's convolutions only, so with the FFT default it no longer sees the long ones.)

Shapes: two rows of the generator's two stages (256 channels at 4,000 frames; 128 channels at 24,000), each
kernel size of its residual blocks (3, 7, 11) at a dilation it uses. Per shape: median milliseconds of each way
(after two warm-up calls), GFLOP/s (2 x multiply-adds), and the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicegen.model.fft_conv import block_for, fft_conv1d, kernel_spectrum  # noqa: E402
SHAPES = [(256, 4000, 3, 1), (256, 4000, 7, 3), (256, 4000, 11, 5),
          (128, 24000, 3, 1), (128, 24000, 7, 3), (128, 24000, 11, 5)]
ENV = ("FBGEMM_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


def median_s(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def profile_shares() -> dict:
    """Self CPU time of the default engine's second rendering of two sentences (the first warms up), by kind of
    operator: {"total_ms", "convolutions", "matrix_products", "rest"} (shares of the total)."""
    from torch.profiler import ProfilerActivity, profile

    from voicegen import Engine

    engine = Engine(device="cpu")
    text = ("The quick brown fox jumps over the lazy dog near the riverbank. Every morning the baker opens her shop "
            "before sunrise, and the smell of fresh bread fills the narrow street.")
    engine.synthesize(text, seed=0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.synthesize(text, seed=0)
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows)
    conv = sum(r.self_cpu_time_total for r in rows if "conv" in r.key or "mkldnn" in r.key)
    matmul = sum(r.self_cpu_time_total for r in rows if r.key in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul"))
    shares = {"total_ms": round(total / 1e3, 1), "convolutions": round(conv / total, 3),
              "matrix_products": round(matmul / total, 3), "rest": round((total - conv - matmul) / total, 3)}
    print(f"profile of the default engine: {shares}")
    return shares


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also profile the default engine rendering two sentences")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for channels, frames, kernel, dilation in SHAPES:
        x = torch.randn(2, channels, frames)
        w = torch.randn(channels, channels, kernel) * 0.05
        b = torch.randn(channels)
        pad = dilation * (kernel - 1) // 2
        taps = [w[:, :, j].contiguous() for j in range(kernel)]

        def conv():
            return F.conv1d(x, w, b, padding=pad, dilation=dilation)

        def per_tap():
            xp = F.pad(x, (pad, pad))
            out = torch.matmul(taps[0], xp[:, :, :frames]).add_(b[:, None])
            for j in range(1, kernel):
                out.add_(torch.matmul(taps[j], xp[:, :, j * dilation : j * dilation + frames]))
            return out

        spectrum = kernel_spectrum(w, block_for(channels, channels))

        def fft():  # what the default CPU engine runs (voicegen.model.fft_conv)
            return fft_conv1d(x, spectrum, b, kernel, dilation)

        with torch.inference_mode():
            difference = float((conv() - per_tap()).abs().max())
            fft_difference = float((conv() - fft()).abs().max())
            t_conv, t_tap = median_s(conv, args.repeats), median_s(per_tap, args.repeats)
            t_fft = median_s(fft, args.repeats)
        flops = 2 * 2 * channels * channels * kernel * frames
        rows.append({"channels": channels, "frames": frames, "kernel": kernel, "dilation": dilation,
                     "conv1d_ms": round(1e3 * t_conv, 3), "per_tap_ms": round(1e3 * t_tap, 3),
                     "conv1d_gflops": round(flops / t_conv / 1e9, 1), "per_tap_gflops": round(flops / t_tap / 1e9, 1),
                     "per_tap_vs_conv1d": round(t_conv / t_tap, 3), "largest_difference": difference,
                     "fft_ms": round(1e3 * t_fft, 3), "fft_vs_conv1d": round(t_conv / t_fft, 3),
                     "fft_largest_difference": fft_difference})
        r = rows[-1]
        print(f"C{channels:<4} T{frames:<6} k{kernel:<3} d{dilation}: conv1d {r['conv1d_ms']:8.2f} ms "
              f"({r['conv1d_gflops']:5.0f} GFLOP/s)  per tap {r['per_tap_ms']:8.2f} ms ({r['per_tap_gflops']:5.0f})  "
              f"x{r['per_tap_vs_conv1d']:.2f}  diff {difference:.1e}  fft {r['fft_ms']:8.2f} ms "
              f"x{r['fft_vs_conv1d']:.2f}  diff {fft_difference:.1e}")
    shares = profile_shares() if args.profile else None
    out = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{args.threads} threads",
        "command": "python benchmarks/conv_kernels.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v),
        "environment": {k: os.environ[k] for k in ENV if k in os.environ},
        "rows": rows,
        "profile_shares": shares,
    }
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"conv-kernels-cpu-{out['date']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
