"""Token-phase benchmark: the one-minute script's token phase and alignment (ALBERT, text encoder, duration
predictor, the shared BiLSTM) with the BiLSTMs packed (the default) and unpacked (`voicegen.model.layers.
UNPACKED_BILSTM`: one call over the batch twice, left- and right-aligned), and on CUDA also unpacked with the
encoder replayed as CUDA graphs (`layers.TOKEN_GRAPHS`: one graph per rows x token bucket, rows padded to a power of
two; captured in the first, uncounted round), alternating in one process. No compile: the token phase runs eagerly
(or as graphs of eager kernels), so this takes seconds even on a fresh GPU machine.

Per setting it reports the wall time of the whole token phase (device synchronized at the end) and the host
(thread CPU) time, medians over the rounds, and the ratio to packed in the same run; and that both give the same
durations and, to float rounding, the same frame features.

Usage:
  python benchmarks/token_phase.py                       # CPU
  python benchmarks/token_phase.py --device cuda --rounds 20
Writes benchmarks/results/token-phase-<device>-<date>.json (or --out) and prints a table.
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

from throughput import one_minute_script, sync  # noqa: E402

from voicegen import Engine, Performance, Request  # noqa: E402
from voicegen.batching import token_batches  # noqa: E402
from voicegen.model import layers  # noqa: E402


def script_items(engine: Engine):
    """The one-minute script's renderer items (its turns planned with their cast's voices), as the renderer's token
    batches."""
    script = one_minute_script()
    voices = dict(zip(script.cast, ("jf_alpha", "jm_kumo")))
    items = [item for turn in script.turns for item in engine.plan(Request(turn.text, voices[turn.speaker], seed=0)).items]
    budget = engine.renderer.performance.max_batch_tokens
    return [[items[i] for i in batch] for batch in token_batches([len(it.tokens) for it in items], budget)]


def token_phase(engine: Engine, batches, device: str):
    """-> (wall s, host s, [(x, asr) per batch], [durations per item])."""
    sync(device)
    wall, host = time.perf_counter(), time.thread_time()
    with torch.inference_mode():
        stores = [engine.renderer._token_phase(batch) for batch in batches]
    sync(device)
    wall, host = time.perf_counter() - wall, time.thread_time() - host
    return wall, host, stores, [it.durations.clone() for batch in batches for it in batch]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out")
    args = ap.parse_args()
    device = args.device
    kind = torch.device(device).type
    # CUDA graphs on for the token phase's own graphs (the frame phase does not run here)
    engine = Engine(device=device, performance=Performance(compile=False, cuda_graphs=kind == "cuda"))
    batches = script_items(engine)
    settings = {"packed": (False, False), "unpacked": (True, False)}  # (UNPACKED_BILSTM, TOKEN_GRAPHS)
    if kind == "cuda":
        settings["graphs"] = (True, True)
    times = {name: [] for name in settings}
    results, failures = {}, {}
    for r in range(args.rounds + 1):  # round 0 warms every setting up (allocator, cuDNN plans, captures): not counted
        for name, (unpacked, graphs) in settings.items():
            if name in failures:
                continue
            layers.UNPACKED_BILSTM[kind], layers.TOKEN_GRAPHS[kind] = unpacked, graphs
            try:
                wall, host, stores, durations = token_phase(engine, batches, device)
            except Exception as exc:  # a setting that fails (a capture on a new GPU) must not cost the others
                if name == "packed":
                    raise
                failures[name] = f"{type(exc).__name__}: {exc}"
                print(f"{name} failed: {failures[name]}", file=sys.stderr)
                continue
            if r:
                times[name].append((wall, host))
            results[name] = (stores, durations)
    for name in failures:
        del settings[name], times[name]
    layers.UNPACKED_BILSTM[kind] = layers.TOKEN_GRAPHS[kind] = False
    s0, d0 = results["packed"]
    same_durations, feature_diff = True, 0.0
    for name in list(settings)[1:]:
        s1, d1 = results[name]
        same_durations &= all(torch.equal(a, b) for a, b in zip(d0, d1))
        feature_diff = max(feature_diff, max(float((a - b).abs().max())
                                             for (xa, aa), (xb, ab) in zip(s0, s1) for a, b in ((xa, xb), (aa, ab))))
    rows = []
    for name, t in times.items():
        wall, host = np.median([w for w, _ in t]), np.median([h for _, h in t])
        rows.append({"setting": name, "wall_ms": round(1e3 * wall, 2), "host_ms": round(1e3 * host, 2)})
    for row in rows:
        row["wall_vs_packed"] = round(rows[0]["wall_ms"] / row["wall_ms"], 3)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine()
    out = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()}, {name}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "device": device,
        "command": "python benchmarks/token_phase.py " + " ".join(sys.argv[1:]),
        "token_batches": [len(b) for b in batches],
        "items": sum(len(b) for b in batches),
        "rounds": args.rounds,
        "baseline": "packed BiLSTMs, same run",
        "same_durations": same_durations,  # every setting against packed
        "token_graphs": len(engine.renderer._token_graphs.graphs) if engine.renderer._token_graphs else 0,
        "failures": failures,
        "largest_feature_difference": feature_diff,
        "settings": rows,
    }
    path = Path(args.out or ROOT / "benchmarks" / "results" / f"token-phase-{device.split(':')[0]}-{out['date']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{out['items']} items in token batches of {out['token_batches']}; same durations: {same_durations}; "
          f"largest feature difference {feature_diff:.2e}")
    print(f"{'setting':>9} {'wall ms':>9} {'host ms':>9} {'x packed':>9}")
    for row in rows:
        print(f"{row['setting']:>9} {row['wall_ms']:>9.2f} {row['host_ms']:>9.2f} {row['wall_vs_packed']:>9.3f}")
    print(f"wrote {path}")
    return 0 if same_durations else 1


if __name__ == "__main__":
    raise SystemExit(main())
