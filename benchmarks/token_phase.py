"""Token-phase benchmark: the one-minute script's token phase and alignment (ALBERT, text encoder, duration
predictor, the shared BiLSTM) in several settings, alternating in one process. Each setting is named by what it
changes from a base of packed BiLSTMs (float32 LSTMs) with the text encoder on the main stream (switches `packed`,
`one-stream`); CUDA's default engine runs one-way-fp16-stream (`layers.ONE_WAY_BILSTM`, `network.
TEXT_ENCODER_STREAM`), the CPU's fp32-albert:

  fp32-albert  ALBERT in float32 (`voicegen.model.acoustic.albert.HALF_PRECISION` off), BiLSTMs packed: the baseline,
               and the CPU's default
  fp16-albert  ALBERT in float16, BiLSTMs packed: CUDA's default (on a CPU: for its durations; slow there)
  bf16-albert  ALBERT in bfloat16 (3 mantissa bits fewer than float16): for comparison
  unpacked     the device's default ALBERT with the BiLSTMs unpacked (`voicegen.model.layers.UNPACKED_BILSTM`: one call over the
               batch twice, left- and right-aligned)
  graphs       (CUDA) unpacked with the encoder replayed as CUDA graphs (`layers.TOKEN_GRAPHS`: one graph per rows x
               token bucket, rows padded to a power of two)
  one-way, one-way-fp16
               the device's default ALBERT with each BiLSTM run as two one-way LSTM calls (`layers.ONE_WAY_BILSTM`),
               in float32 or float16: in float16 with rows padded to a multiple of 8, the shape for which cuDNN runs
               its persistent LSTM kernel on an A100/H100/H200 (on a CPU: for its durations)
  one-way-fp16-graphs
               (CUDA) one-way-fp16 with the encoder replayed as CUDA graphs
  text-encoder-stream, one-way-fp16-stream
               (CUDA) the text encoder on a second stream (`voicegen.model.network.TEXT_ENCODER_STREAM`), alone and
               with one-way-fp16
  bucket-padding / exact-padding
               the device's default with its token batches padded the other way
               (`voicegen.renderer.EXACT_TOKEN_PADDING`): to their token bucket on the CPU (which pads to the longest
               item), to the longest item on CUDA
  budget-N     (--budgets) the engine's default (on CUDA one-way-fp16-stream) with token batches of at most N padded
               tokens instead of the engine's budget (`Performance.max_batch_tokens`): a BiLSTM's recurrence is a
               chain of small steps, so on a GPU a large batch may take little longer than a small one and fewer
               batches pay

Round 0 warms every setting up (allocator, cuDNN plans, captures) and is not counted. No compile: the token phase
runs eagerly (or as graphs of eager kernels), so this takes seconds even on a fresh GPU machine.

Per setting it reports the wall time of the whole token phase (device synchronized at the end) and the host
(thread CPU) time, medians over the rounds, the ratio to the baseline in the same run, and how its durations compare
with the baseline's: tokens whose duration differs (of all tokens), the largest difference, and, where every
duration is equal, the largest difference of the frame features; and ALBERT's largest activation in float32 (how
far float16's range is).

Usage:
  python benchmarks/token_phase.py                       # CPU
  python benchmarks/token_phase.py --device cuda --rounds 20
  python benchmarks/token_phase.py --corpus 10 --rounds 1   # durations over throughput.py's 10-minute corpus
  python benchmarks/token_phase.py --device cuda --corpus 10 --budgets 16384,32768
Writes benchmarks/results/token-phase-<device>-<date>.json (or --out) after every timed round (a run cut short keeps
the rounds it made: `rounds_done`) and prints a table at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from typing import NamedTuple  # noqa: E402

from throughput import build_corpus, one_minute_script, sync  # noqa: E402

from voicegen import Engine, Performance, Request, renderer  # noqa: E402
from switches import set_all  # noqa: E402
from voicegen.model.acoustic import albert  # noqa: E402


class Setting(NamedTuple):
    """One way to run the token phase: the switches it sets (names in `switches.SWITCHES`; the rest keep the
    device's defaults), then restores, and its token budget."""

    switches: tuple[str, ...]
    budget: int  # padded tokens per token batch


def script_items(engine: Engine, corpus_minutes: float = 0.0):
    """The one-minute script's renderer items (its turns planned with their cast's voices), or those of
    throughput.py's corpus of `corpus_minutes`."""
    if corpus_minutes:
        requests = build_corpus(corpus_minutes)
    else:
        script = one_minute_script()
        voices = dict(zip(script.cast, ("jf_alpha", "jm_kumo")))
        requests = [Request(turn.text, voices[turn.speaker], seed=0) for turn in script.turns]
    return [item for request in requests for item in engine.plan(request).items]


def batches_of(engine: Engine, items, budget: int):
    """The renderer's token batches of `items` within `budget` padded tokens (`Renderer.token_batches`)."""
    return [[items[i] for i in batch] for batch in engine.renderer.token_batches(items, budget)]


def token_phase(engine: Engine, items, batches, device: str):
    """-> (wall s, host s, [(x, asr) per batch], [durations per item, in the order of `items`])."""
    sync(device)
    wall, host = time.perf_counter(), time.thread_time()
    with torch.inference_mode():
        stores = [engine.renderer._token_phase(batch) for batch in batches]
    sync(device)
    wall, host = time.perf_counter() - wall, time.thread_time() - host
    return wall, host, stores, [it.durations.clone() for it in items]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--corpus", type=float, default=0.0, metavar="MINUTES",
                    help="throughput.py's corpus of about MINUTES of speech instead of the one-minute script")
    ap.add_argument("--budgets", default="", help="comma-separated token budgets to try besides the engine's")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1 (round 0, the warm-up, is not timed)")
    device = args.device
    kind = torch.device(device).type
    # CUDA graphs on for the token phase's own graphs (the frame phase does not run here)
    engine = Engine(device=device, performance=Performance(compile=False, cuda_graphs=kind == "cuda"))
    items = script_items(engine, args.corpus)
    budget = engine.renderer.performance.max_batch_tokens
    default_albert = albert.HALF_PRECISION.get(kind)
    exact = renderer.EXACT_TOKEN_PADDING.get(kind, False)
    padding = "bucket-padding" if exact else "exact-padding"  # the other way than the device's default
    settings = {name: Setting((name,), budget) for name in
                ("fp32-albert", "fp16-albert", "bf16-albert", "unpacked", padding, "one-way", "one-way-fp16")}
    if kind == "cuda":  # graphed token batches keep their buckets (`Renderer._token_phase`)
        settings["graphs"] = Setting(("unpacked", "token-graphs"), budget)
        settings["one-way-fp16-graphs"] = Setting(("one-way-fp16", "token-graphs"), budget)
        settings["text-encoder-stream"] = Setting(("text-encoder-stream",), budget)
        settings["one-way-fp16-stream"] = Setting(("one-way-fp16", "text-encoder-stream"), budget)
    for extra in (int(b) for b in args.budgets.split(",") if b.strip()):
        settings[f"budget-{extra}"] = Setting(("one-way-fp16", "text-encoder-stream") if kind == "cuda" else (), extra)
    batches = {setting.budget: batches_of(engine, items, setting.budget) for setting in settings.values()}
    set_all(["packed", "one-stream"], kind)  # the base every setting changes (the engine's default: batches above)
    times = {name: [] for name in settings}
    results, failures = {}, {}
    # the largest |value| entering ALBERT's last LayerNorm (a residual sum: its largest activation) in float32: how
    # far float16's range (65,504) is from overflowing
    peak = [0.0]
    layer = engine.renderer.network.bert.encoder.albert_layer_groups[0].albert_layers[0]
    hook = layer.full_layer_layer_norm.register_forward_pre_hook(
        lambda module, inputs: peak.__setitem__(0, max(peak[0], float(inputs[0].float().abs().max()))))
    date = datetime.date.today().isoformat()
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"token-phase-{device.split(':')[0]}-{date}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine()

    def report() -> dict:
        """The figures of the rounds timed so far (the settings that have one and have not failed)."""
        s0, d0 = results["fp32-albert"]
        agreement = {}
        for name in settings:
            if name in failures or name not in results:
                continue
            s1, d1 = results[name]
            changed = sum(int((a != b).sum()) for a, b in zip(d0, d1))
            largest = max(int((a - b).abs().max()) for a, b in zip(d0, d1))
            feature = None
            if not changed and settings[name].budget == budget:  # aligned frame by frame, stores laid out alike
                feature = max(float((a - b).abs().max()) for (xa, aa), (xb, ab) in zip(s0, s1) for a, b in ((xa, xb), (aa, ab)))
            agreement[name] = {"tokens_changed": changed, "largest_duration_difference": largest,
                               "items_changed": sum(1 for a, b in zip(d0, d1) if not torch.equal(a, b)),
                               "largest_feature_difference": feature}
        rows = []
        for name, t in times.items():
            if name in failures or not t:
                continue
            wall, host = np.median([w for w, _ in t]), np.median([h for _, h in t])
            rows.append({"setting": name, "wall_ms": round(1e3 * wall, 2), "host_ms": round(1e3 * host, 2),
                         "rounds": len(t)})
        for row in rows:
            row["wall_vs_baseline"] = round(rows[0]["wall_ms"] / row["wall_ms"], 3)
            row.update(agreement[row["setting"]])
        return {
            "date": date,
            "machine": f"{platform.node()}, {machine}, torch {torch.__version__}, {torch.get_num_threads()} threads",
            "device": device,
            "command": "python benchmarks/token_phase.py " + " ".join(sys.argv[1:]),
            "token_batches": {str(b): [len(batch) for batch in plan] for b, plan in batches.items()},
            "token_budget": budget,
            "items": len(items),
            "rounds": args.rounds,
            "rounds_done": len(times["fp32-albert"]),  # fewer than `rounds` in a run cut short
            "corpus_minutes": args.corpus or None,  # None: the one-minute script
            "tokens": sum(len(d) for d in d0),
            "albert_peak_activation": peak[0],  # float32, first round; float16 overflows at 65,504
            "albert_default": str(default_albert).replace("torch.", "") if default_albert else "float32",
            "baseline": "fp32-albert: ALBERT in float32, packed BiLSTMs, the device's token padding, same run",
            "exact_token_padding": exact,
            "token_graphs": len(engine.renderer._token_graphs.graphs) if engine.renderer._token_graphs else 0,
            "failures": failures,
            "settings": rows,
        }

    for r in range(args.rounds + 1):  # round 0 warms every setting up (allocator, cuDNN plans, captures): not counted
        for name, setting in settings.items():
            if name in failures:
                continue
            undo = set_all(setting.switches, kind)
            try:
                wall, host, stores, durations = token_phase(engine, items, batches[setting.budget], device)
            except Exception as exc:  # a setting that fails (a capture on a new GPU) must not cost the others
                if name == "fp32-albert":
                    raise
                failures[name] = f"{type(exc).__name__}: {exc}"
                print(f"{name} failed: {failures[name]}", file=sys.stderr)
                continue
            finally:
                undo()
            if r:
                times[name].append((wall, host))
            results[name] = (stores, durations)
            if name == "fp32-albert":
                hook.remove()  # measured once, in float32
        if r:  # saved after every round: a run cut at its time limit keeps the rounds it made
            out = report()
            path.write_text(json.dumps(out, indent=2) + "\n")
    tokens, rows = out["tokens"], out["settings"]
    print(f"{out['items']} items, {tokens} tokens, in token batches of {out['token_batches'][str(budget)]}; "
          f"ALBERT's largest activation {peak[0]:.1f}")
    print(f"{'setting':>19} {'wall ms':>9} {'host ms':>9} {'x base':>7} {'tokens changed':>15} {'max diff':>8}")
    for row in rows:
        print(f"{row['setting']:>19} {row['wall_ms']:>9.2f} {row['host_ms']:>9.2f} {row['wall_vs_baseline']:>7.3f} "
              f"{row['tokens_changed']:>7} ({row['tokens_changed'] / tokens:.2%}) {row['largest_duration_difference']:>8}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
