"""How long torch.compile takes for the frame phase, whole or by region, cold (an empty inductor cache).

Whole: one graph for KokoroNetwork.render (what the renderer compiles today). Regions: each repeated block
compiled on its own (the generator's AdaINResBlock1, the decoder's AdainResBlk1d, the harmonic source), the glue
between them eager, so a block type is traced and lowered once per distinct configuration instead of once per use
inside one large graph with symbolic sizes. Reports, per mode, in a fresh process with its own cache directory:
seconds for the first call (compile), for a second shape (any recompile), graphs compiled, and the compiled
frame phase's speed against eager on a fixed batch.

Usage: python benchmarks/compile_time.py [--device cpu] [--modes whole,regions] [--out JSON]
"""

from __future__ import annotations

import argparse
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
from torch._dynamo.utils import counters
import torch._dynamo.config as dynamo_config
dynamo_config.recompile_limit = 64
from voicegen.weights import load_network
from voicegen.model.layers import AdainResBlk1d
from voicegen.model.vocoder.generator import AdaINResBlock1
from voicegen.model.vocoder.source import SourceModuleHnNSF
dev = torch.device({device!r})
net = load_network(None, dev)
mode = {mode!r}
if mode == "whole":
    render = torch.compile(net.render, dynamic=True)
else:
    for m in net.modules():
        if isinstance(m, (AdaINResBlock1, AdainResBlk1d, SourceModuleHnNSF)):
            m.compile(dynamic=True)
    render = net.render

def inputs(rows, frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, 512, frames, generator=g) * 0.5).to(dev)
    asr = (torch.randn(rows, 512, frames, generator=g) * 0.5).to(dev)
    style = (torch.randn(rows, 256, generator=g) * 0.1).to(dev)
    return x, asr, style, torch.full((rows,), frames, device=dev), torch.arange(rows, device=dev), torch.zeros(rows, device=dev)

def timed(fn, *a):
    t = time.perf_counter()
    with torch.inference_mode():
        out = fn(*a)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, out

first, _ = timed(render, *inputs(2, 48))
second, _ = timed(render, *inputs(3, 96))
third, _ = timed(render, *inputs(1, 64))
bench = inputs(4, 200, seed=1)
timed(render, *bench)
eager_s = min(timed(net.render, *bench)[0] for _ in range(2))
compiled_s = min(timed(render, *bench)[0] for _ in range(2))
_, a = timed(net.render, *bench)
_, b = timed(render, *bench)
print(json.dumps({{"mode": mode, "first_call_s": first, "second_shape_s": second, "one_row_s": third,
    "graphs_compiled": counters["stats"]["unique_graphs"], "frame_phase_eager_s": eager_s,
    "frame_phase_compiled_s": compiled_s, "speedup_vs_eager": eager_s / compiled_s,
    "max_abs_diff_vs_eager": float((a - b).abs().max())}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default="regions,whole")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = {}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
            if args.threads:
                env["OMP_NUM_THREADS"] = str(args.threads)
            code = CHILD.format(root=str(ROOT), device=args.device, mode=mode)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            results[mode] = {"error": out.stderr[-500:], "process_s": wall}
        else:
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1]) | {"process_s": wall}
        print(json.dumps(results[mode]), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps({"device": args.device, "command": " ".join(sys.argv),
                                                  "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
