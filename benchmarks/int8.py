"""Would int8 convolutions make the CPU path beat onnxruntime without AMX? A probe, not a feature (issue 11 item 7).

onnxruntime runs the reference file's generator convolutions as `ConvInteger` on activations quantized at run time
(`DynamicQuantizeLinear`); in float32 a 2-core AVX2 CPU runs them near its vector peak, so int8 arithmetic is what
could beat onnxruntime there (../shared/MODEL.md). This script swaps the generator's residual convolutions (not
the up-sampling ones: see --parts) for torch's dynamic int8 CPU kernels (`quantized::conv1d_dynamic`: weights int8
per output channel, 7-bit so that AVX2's 16-bit pair sums cannot saturate; activations 8-bit per tensor, one item
at a time) and measures, in one process:

- per layer: the relative error of each int8 convolution against its float32 layer on the real activations of one
  rendered sentence, with 8-bit and with torch's default 7-bit (`reduce_range`) activations;
- the whole rendering of a few corpus sentences: time float32 vs int8 (alternating, best of `--repeats`), log-mel
  distance of int8 to float32, and of float32 with other noise seeds (the scale of "audibly the same");
- an operator profile of one sentence, float32 and int8 (where the time goes).

Run it with the CPU's vector width held to AVX2 (fbgemm, oneDNN, MKL and ATen), as RESULTS.md does:
  FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \
      python benchmarks/int8.py --sentences 6
Writes benchmarks/results/int8-<date>.json (or --out) and prints a summary.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_LEVELS = 63  # 7-bit weights: 2 x 255 x 63 < 32767, no saturation in AVX2's vpmaddubsw


class Int8Conv1d(nn.Module):
    """Conv1d / ConvTranspose1d on torch's dynamic int8 kernels; activations quantized per item."""

    def __init__(self, conv: nn.Module, reduce_range: bool = False):
        super().__init__()
        w, bias = conv.weight.detach().float(), None if conv.bias is None else conv.bias.detach().float()
        self.reduce_range = reduce_range
        if isinstance(conv, nn.ConvTranspose1d):
            qw = torch.quantize_per_tensor(w, max(float(w.abs().max()), 1e-12) / WEIGHT_LEVELS, 0, torch.qint8)
            self.packed = torch.ops.quantized.conv_transpose1d_prepack(
                qw, bias, list(conv.stride), list(conv.padding), list(conv.output_padding), list(conv.dilation),
                conv.groups)
            self.op = torch.ops.quantized.conv_transpose1d_dynamic
        else:
            scale = w.abs().amax(dim=(1, 2)).clamp(min=1e-12).double() / WEIGHT_LEVELS
            qw = torch.quantize_per_channel(w, scale, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8)
            self.packed = torch.ops.quantized.conv1d_prepack(
                qw, bias, list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
            self.op = torch.ops.quantized.conv1d_dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.op(x[i : i + 1].float(), self.packed, self.reduce_range) for i in range(x.shape[0])]
        return (parts[0] if len(parts) == 1 else torch.cat(parts)).contiguous()


def _swap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv1d, nn.ConvTranspose1d)):
            setattr(module, name, Int8Conv1d(child))
        else:
            _swap(child)


def int8_copy(network: nn.Module, parts: tuple[str, ...]) -> nn.Module:
    net = copy.deepcopy(network)
    for part in parts:
        _swap(getattr(net.decoder.generator, part))
    return net.eval()


def layer_errors(engine, text: str) -> dict:
    gen = engine.renderer.network.decoder.generator
    seen, hooks = {}, []
    for name, m in gen.named_modules():
        if isinstance(m, nn.Conv1d) and name.split(".")[0] in ("resblocks", "noise_res"):
            def hook(mod, inputs, output, name=name):
                seen.setdefault(name, (mod, inputs[0].detach().clone(), output.detach().clone()))
            hooks.append(m.register_forward_hook(hook))
    try:
        engine.synthesize(text, seed=0)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    with torch.inference_mode():
        for rr in (False, True):
            errs = {}
            for name, (mod, x, y) in seen.items():
                y8 = Int8Conv1d(mod, reduce_range=rr)(x)
                errs[name] = float((y8 - y).norm() / y.norm())
            out["7-bit" if rr else "8-bit"] = {"median": float(np.median(list(errs.values()))),
                                               "max": max(errs.values()), "worst": max(errs, key=errs.get),
                                               "layers": errs}
    out["activation_max_over_mean"] = float(np.median([float(x.abs().max() / x.abs().mean().clamp(min=1e-12))
                                                       for _, x, _ in seen.values()]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", default="resblocks,noise_res",
                        help="generator module lists to run in int8 (ups: its transposed convolutions ran ~100x slower "
                             "in int8 in a first try, and a process with them died without a message)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from voicegen import Engine
    from voicegen.eval.spectral import log_mel_distance

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sentences = [s.strip() for s in (ROOT / "benchmarks/data/sentences_plain.txt").read_text().splitlines()
                 if s.strip()][: args.sentences]
    text = " ".join(sentences)
    engine = Engine()
    errors = layer_errors(engine, sentences[0])
    net32 = engine.renderer.network
    parts = tuple(args.parts.split(","))
    net8 = int8_copy(net32, parts)

    def use(net):
        engine.renderer.network, engine.renderer._render = net, net.render

    def render(net, seed=0):
        use(net)
        t = time.perf_counter()
        audio = engine.synthesize(text, seed=seed).samples
        return audio, time.perf_counter() - t

    render(net32), render(net8)  # warm-up
    times = {"float32": [], "int8": []}
    for _ in range(args.repeats):
        ref, t = render(net32)
        times["float32"].append(t)
        a8, t = render(net8)
        times["int8"].append(t)
    alt, _ = render(net32, seed=1)
    seconds = len(ref) / 24000

    from torch.profiler import ProfilerActivity, profile

    profiles = {}
    for name, net in (("float32", net32), ("int8", net8)):
        use(net)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            engine.synthesize(sentences[0], seed=0)
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        profiles[name] = {
            "top_self_ms": [(e.key, round(e.self_cpu_time_total / 1e3, 1)) for e in events[:8]],
            "convolution_self_ms": round(sum(e.self_cpu_time_total for e in events if "conv" in e.key) / 1e3, 1),
            "copy_self_ms": round(sum(e.self_cpu_time_total for e in events if e.key == "aten::copy_") / 1e3, 1),
            "total_self_ms": round(sum(e.self_cpu_time_total for e in events) / 1e3, 1),
        }

    result = {
        "date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "quantized_engine": torch.backends.quantized.engine,
        "isa_env": {k: os.environ.get(k) for k in ("FBGEMM_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                                                  "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")},
        "parts": parts, "audio_s": seconds, "times_s": times,
        "rtf": {k: min(v) / seconds for k, v in times.items()},
        "int8_speedup": min(times["float32"]) / min(times["int8"]),
        "log_mel_int8_vs_float32": log_mel_distance(ref, a8),
        "log_mel_float32_seed1_vs_seed0": log_mel_distance(ref, alt),
        "layer_errors": errors, "profiles": profiles,
    }
    out = Path(args.out) if args.out else ROOT / f"benchmarks/results/int8-{result['date']}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"audio {seconds:.1f} s; RTF float32 {result['rtf']['float32']:.3f}, int8 {result['rtf']['int8']:.3f} "
          f"(x{result['int8_speedup']:.2f}); log-mel int8 vs float32 {result['log_mel_int8_vs_float32']:.3f} nats, "
          f"float32 seed 1 vs 0 {result['log_mel_float32_seed1_vs_seed0']:.3f}")
    for k in ("8-bit", "7-bit"):
        e = errors[k]
        print(f"per-layer relative error, {k} activations: median {e['median']:.3f}, max {e['max']:.3f} ({e['worst']})")
    for name, p in profiles.items():
        print(f"{name} profile of one sentence: convolutions {p['convolution_self_ms']:.0f} ms, copies "
              f"{p['copy_self_ms']:.0f} ms of {p['total_self_ms']:.0f} ms; top: "
              + ", ".join(f"{k} {v:.0f}" for k, v in p["top_self_ms"][:5]))
    print("JSON:", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
