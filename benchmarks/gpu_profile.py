"""Where the GPU's time goes in the fast path: warm-up from the compile cache, then a torch.profiler kernel table.

Run after benchmarks/throughput.py has filled the compile cache (same VOICEGEN_CACHE), so the warm-up it reports
is the cached one: a fresh process, compiled graphs read back from disk, CUDA graphs captured again.
  1. Engine(cuda, compile + bf16 + CUDA graphs).warmup(): seconds, graphs loaded / compiled / captured.
  2. The corpus chunks rendered once with CUDA graphs (wall time), then by the same compiled graph with CUDA
     graphs off (so kernels show by name) under torch.profiler: the top kernels by GPU time, and GPU time per
     kernel family (convolution, GEMM, Triton fused, elementwise, copies, FFT, LSTM) against wall time.
  0. (before 2) The one-minute two-speaker script end to end on the warm engine as it runs by default (CUDA graphs
     on) under torch.profiler (`script` in profile.json): wall and GPU-busy time, kernels by family, the top kernels
     by GPU time and the top host operations by CPU time (synchronizations, cuDNN's LSTM calls, the mixer), which
     is where the token phase's and the script's time can be read (`--overlap` renders with `Renderer.overlap`);
     then the same for the first chunk of a streamed sentence (`first_audio`: what time to first audio waits for).
Usage: python benchmarks/gpu_profile.py --minutes 2 --out DIR      (writes DIR/profile.json, DIR/kernels.txt)
       python benchmarks/gpu_profile.py --script-only --out DIR    (step 0 alone, script and first audio: seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from throughput import build_corpus, chunks_of, one_minute_script, render_all, seconds  # noqa: E402

from voicegen import Engine, Performance  # noqa: E402
from voicegen.podcast.render import render_script  # noqa: E402

FAMILIES = [  # first match wins; names as cuDNN, cuBLAS, Triton and ATen report them
    ("triton (fused by compile)", ("triton",)),
    ("convolution", ("conv", "cudnn", "implicit_gemm", "winograd", "fft2d", "dgrad", "wgrad", "xmma")),
    ("gemm", ("gemm", "sm90", "sm80", "cutlass", "ampere", "hopper")),
    ("lstm / rnn", ("lstm", "rnn", "elementwise_kernel_with_index")),
    ("fft", ("fft", "vector_fft", "regular_fft")),
    ("copy / memset", ("copy", "memcpy", "memset", "cat", "gather", "index")),
    ("elementwise / reduce (unfused)", ("elementwise", "reduce", "vectorized", "unrolled")),
]


def family(name: str) -> str:
    low = name.lower()
    for fam, keys in FAMILIES:
        if any(k in low for k in keys):
            return fam
    return "other"


def kernel_summary(kernels: list) -> dict:
    """GPU-busy seconds, launches and seconds per kernel family of a profile's CUDA events."""
    families: dict[str, float] = defaultdict(float)
    for e in kernels:
        families[family(e.key)] += e.self_device_time_total
    return {
        "gpu_busy_s": sum(e.self_device_time_total for e in kernels) / 1e6,
        "kernel_launches": sum(e.count for e in kernels),
        "gpu_s_by_family": {k: v / 1e6 for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
    }


def profile_call(call, top: int = 25) -> dict:
    """call() once untimed, then once under torch.profiler: wall and GPU-busy time, kernels by family, the top
    kernels by GPU time and the top host operations by CPU time. `call` returns the seconds of audio it made."""
    from torch.profiler import ProfilerActivity, profile

    call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        audio_s = call()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    host = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    return {
        "audio_s": audio_s, "wall_s": wall, **kernel_summary(kernels),
        "top_kernels_ms": [[e.key[:100], e.count, e.self_device_time_total / 1e3]
                           for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:top]],
        "top_host_ops_ms": [[e.key[:100], e.count, e.self_cpu_time_total / 1e3]
                            for e in sorted(host, key=lambda e: -e.self_cpu_time_total)[:top]],
    }


def profile_script(engine: Engine, top: int = 25) -> dict:
    """The one-minute script, text in and mixed audio out (`profile_call`)."""
    script = one_minute_script()
    return profile_call(lambda: render_script(engine, script, seed=0).duration, top)


def profile_first_audio(engine: Engine, top: int = 25) -> dict:
    """The first chunk of a streamed sentence, as throughput.py times first audio (`profile_call`)."""
    text = "Time to first audio is what a listener waits for. The rest follows while they listen."
    return profile_call(lambda: next(engine.stream(text, seed=0)).duration, top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--eager", action="store_true", help="profile eager bf16 instead (no compile, no cached warm-up)")
    parser.add_argument("--script-only", action="store_true", help="only the one-minute script's profile (step 0)")
    parser.add_argument("--overlap", action="store_true", help="render with Renderer.overlap (the token phase pipelined)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}

    t0 = time.perf_counter()
    engine = Engine(device="cuda", performance=Performance(compile=not args.eager, dtype=torch.bfloat16,
                                                           cuda_graphs=not args.eager))
    report = engine.warmup()
    torch.cuda.synchronize()
    result["cached_warmup"] = None if args.eager else {
        "seconds": time.perf_counter() - t0, "warmup_report_s": report.seconds, "shapes": len(report.shapes),
        "graphs_captured": report.graphs_captured, "graphs_loaded": report.graphs_loaded,
        "graphs_compiled": report.graphs_compiled, "graph_load_s": report.load_s}
    engine.renderer.overlap = args.overlap
    result["overlap"] = args.overlap
    print(json.dumps(result), flush=True)
    result["script"] = profile_script(engine)
    result["first_audio"] = profile_first_audio(engine)
    (out / "profile.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("script", "first_audio")}, indent=1), flush=True)
    if args.script_only:
        return 0

    items = chunks_of(Engine(device="cpu"), build_corpus(args.minutes))
    result["profiled_mode"] = "eager bf16" if args.eager else "compiled bf16, CUDA graphs off (the same compiled graph)"
    t0 = time.perf_counter()
    render_all(engine, items, batch_one=False)
    torch.cuda.synchronize()
    result["graphed_wall_s"] = time.perf_counter() - t0
    # the same compiled graph without replaying CUDA graphs, so that kernels show by name (batches keep the bucket
    # shapes and the input layout the graph was compiled for)
    engine.renderer._graphs = None
    render_all(engine, items, batch_one=False)  # every shape of this corpus seen once
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        audio = render_all(engine, items, batch_one=False)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    result["profiled"] = {
        "audio_s": seconds(audio), "wall_s": wall, "x_realtime_under_profiler": seconds(audio) / wall,
        **kernel_summary(kernels),
    }
    (out / "kernels.txt").write_text(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=60, max_name_column_width=90))
    (out / "profile.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
