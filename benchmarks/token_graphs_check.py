"""Where the token phase in CUDA graphs goes wrong (`voicegen.model.layers.TOKEN_GRAPHS`): a diagnosis for one device
call, eager (no compile), in well under a minute.

On an H200 (benchmarks/RESULTS.md, seventeenth session) the encoder replayed as CUDA graphs ran the one-minute
script's token batch but failed on the benchmark corpus, with unpacked and with one-way BiLSTMs alike: "Expected
sequence length to be larger than 0 in RNN" in the alignment, i.e. some batch's durations summed to zero or less.
On the CPU both branches of `Renderer._token_phase` that graphs take (a captured shape, and a batch too large to
capture, run directly with its lengths on the device) give the eager durations (tests/test_layers.py, and this
script with `--device cpu` and a stand-in graph cache), so what differs is capture and replay.

For each token batch of throughput.py's corpus (the engine's own batches, then the same items one by one and in
pairs, so that several shapes are captured in turn and replayed out of order), this compares the graphed token
phase with the eager one (TOKEN_GRAPHS off) and prints one line per batch: rows, padded rows, token bucket, whether
the shape is captured, the sum and range of the durations both ways, how many tokens differ, and the error if one
is raised. Then it replays the first captured shape again after the others, with its first inputs, to see whether a
later capture damaged it (the graphs share one memory pool). JSON with every line: --out.

Usage (on the device, from the project root, with the bundle's environment):
  python benchmarks/token_graphs_check.py --minutes 10 --out /root/out/token-graphs-check.json
  python benchmarks/token_graphs_check.py --device cpu --minutes 1      # the plumbing, with a stand-in cache
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from switches import set_all  # noqa: E402
from throughput import build_corpus  # noqa: E402
from voicegen import Engine, Performance  # noqa: E402
from voicegen.batching import round_up_pow2  # noqa: E402


def durations_of(renderer, batch, graphed: bool):
    """The token phase of one batch, graphed or eager -> (durations per item, error text or None)."""
    renderer._graphed_tokens = (lambda: True) if graphed else (lambda: False)
    try:
        with torch.inference_mode():
            renderer._token_phase(batch)
        return [it.durations.clone() for it in batch], None
    except Exception as exc:  # noqa: BLE001 - the point is to see it
        return None, f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=-3).strip().splitlines()[-3]}"
    finally:
        del renderer._graphed_tokens


def check(engine: Engine, batch, stand_in: bool) -> dict:
    renderer = engine.renderer
    tokens, lengths = renderer._token_matrix(batch, graphed=True)
    rows, size = len(batch), tokens.shape[1]
    padded = round_up_pow2(rows)
    if renderer._token_graphs is None and not stand_in:
        renderer._graphed_tokens()  # makes the graph cache (TOKEN_GRAPHS is on)
    captured = renderer._token_graphs.captures(padded, size)
    want, error_eager = durations_of(renderer, batch, graphed=False)
    got, error = durations_of(renderer, batch, graphed=True)
    line = {"rows": rows, "padded_rows": padded, "size": size, "captured": bool(captured),
            "lengths": [int(n) for n in lengths], "error": error or error_eager}
    if want is not None:
        line["eager_sum"] = [int(d.sum()) for d in want]
    if got is not None:
        line["graphed_sum"] = [int(d.sum()) for d in got]
        line["graphed_min"] = min(int(d.min()) for d in got)
        if want is not None:
            line["tokens_differing"] = sum(int((a != b).sum()) for a, b in zip(want, got))
            line["largest_difference"] = max(int((a - b).abs().max()) for a, b in zip(want, got))
    return line


class StandIn:
    """A graph cache that runs the encoder directly (the CPU has no CUDA graphs)."""

    def __init__(self, renderer):
        self.renderer = renderer

    def captures(self, rows: int, size: int) -> bool:
        return rows * size <= 2048

    def run(self, *inputs):
        return self.renderer._encode_call(*inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--minutes", type=float, default=10.0, help="corpus minutes (throughput.py's corpus)")
    parser.add_argument("--switches", default="one-way-fp16,token-graphs",
                        help="switches (benchmarks/switches.py) for the graphed runs; default CUDA's BiLSTMs + graphs")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    kind = torch.device(args.device).type
    stand_in = kind != "cuda"
    engine = Engine(device=args.device, performance=Performance(cuda_graphs=not stand_in))
    renderer = engine.renderer
    set_all([s for s in args.switches.split(",") if s], kind)
    if stand_in:
        from voicegen.model import layers

        layers.UNPACKED_BILSTM[kind] = True  # lengths on the device, as the graphed branch gives them
        renderer._token_graphs = StandIn(renderer)
    items = [item for request in build_corpus(args.minutes) for item in engine.plan(request).items]
    groups = [("engine batch", [items[i] for i in batch]) for batch in renderer.token_batches(items)]
    groups += [("single", [it]) for it in items[:6]]
    groups += [("pair", items[k : k + 2]) for k in range(0, min(12, len(items) - 1), 2)]
    lines = []
    for name, batch in groups:
        line = {"group": name, **check(engine, batch, stand_in)}
        lines.append(line)
        sums = line.get("graphed_sum", [])
        print(f"{name:12s} rows {line['rows']:3d}->{line['padded_rows']:3d} size {line['size']:3d} "
              f"captured {line['captured']!s:5s} graphed sum {min(sums, default=0):5d}..{max(sums, default=0):5d} "
              f"min {line.get('graphed_min', '-')} differing {line.get('tokens_differing', '-')} "
              f"error {line['error']}", flush=True)
    first = next((g for g, line in zip(groups, lines) if line["captured"]), None)
    if first is not None:  # the first captured shape again, after every later capture
        line = {"group": "first captured, again", **check(engine, first[1], stand_in)}
        lines.append(line)
        print(f"again: {line}", flush=True)
    report = {"device": torch.cuda.get_device_name() if not stand_in else "cpu (stand-in cache)",
              "torch": torch.__version__, "switches": args.switches, "lines": lines}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
