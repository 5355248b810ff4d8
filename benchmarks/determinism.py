"""What "reproducible" means, measured: the same request rendered again in the same batch composition, and in
other compositions (with other requests in one call, and from concurrent threads).

    python benchmarks/determinism.py [--requests 6] [--out benchmarks/results/determinism-DATE.json]

For each seeded request: (a) alone, twice; (b) inside one `synthesize_many` call with the others, twice;
(c) alone vs inside that call; (d) alone vs rendered while the other requests arrive from threads. Reports the
largest absolute sample difference, the RMS of the difference relative to the signal, and the log-mel distance,
and whether the word timings (durations) are identical. Prints a table and saves JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import threading
from pathlib import Path

import numpy as np
import torch

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back before noon tomorrow.",
    "A large rainbow appeared after the storm had passed.",
    "It costs four dollars and twenty cents.",
    "We will meet at the station at half past five.",
    "Reproducible output matters to people who test software.",
    "The committee postponed its decision until next week.",
    "Bright lights filled the hall as the music began.",
]
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def compare(a, b) -> dict:
    from voicegen.eval.spectral import log_mel_distance

    same_words = [w.start for s in a.segments for w in s.words] == [w.start for s in b.segments for w in s.words]
    if a.samples.shape != b.samples.shape:
        return {"same_length": False, "same_word_times": same_words}
    x, y = a.samples.astype(np.float64), b.samples.astype(np.float64)
    rms = float(np.sqrt(np.mean(y**2))) or 1.0
    return {"same_length": True, "same_word_times": same_words, "bit_identical": bool(np.array_equal(x, y)),
            "max_abs": float(np.abs(x - y).max()), "rel_rms": float(np.sqrt(np.mean((x - y) ** 2)) / rms),
            "log_mel": float(log_mel_distance(a.samples, b.samples))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--out", default=f"benchmarks/results/determinism-{datetime.date.today()}.json")
    args = parser.parse_args()

    from voicegen import Engine, Request

    engine = Engine(device="cpu")
    reqs = [Request(TEXTS[i % len(TEXTS)], VOICES[i % len(VOICES)], seed=100 + i) for i in range(args.requests)]
    alone = [[engine.synthesize_many([r])[0] for r in reqs] for _ in range(2)]
    batch = [engine.synthesize_many(reqs) for _ in range(2)]
    threaded = [None] * len(reqs)

    def call(i):
        threaded[i] = engine.synthesize_many([reqs[i]])[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cases = {
        "alone, twice": [compare(a, b) for a, b in zip(*alone)],
        "same batch, twice": [compare(a, b) for a, b in zip(*batch)],
        "alone vs in one call with the others": [compare(a, b) for a, b in zip(alone[0], batch[0])],
        "alone vs concurrent threads": [compare(a, b) for a, b in zip(alone[0], threaded)],
    }
    summary = {}
    print(f"{args.requests} requests, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'comparison':<40}{'bit-identical':>14}{'same words':>11}{'max |diff|':>11}{'rel. RMS':>10}{'log-mel':>9}")
    for name, rows in cases.items():
        row = {"bit_identical": sum(r.get("bit_identical", False) for r in rows), "items": len(rows),
               "same_word_times": sum(r["same_word_times"] for r in rows),
               "max_abs": max(r.get("max_abs", float("inf")) for r in rows),
               "rel_rms": max(r.get("rel_rms", float("inf")) for r in rows),
               "log_mel": max(r.get("log_mel", float("inf")) for r in rows)}
        summary[name] = row
        print(f"{name:<40}{row['bit_identical']:>9}/{row['items']:<4}{row['same_word_times']:>7}/{row['items']:<3}"
              f"{row['max_abs']:>11.1e}{row['rel_rms']:>10.1e}{row['log_mel']:>9.1e}")
    result = {
        "date": str(datetime.date.today()),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count()},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "command": f"python benchmarks/determinism.py --requests {args.requests} --out {args.out}",
        "summary": summary, "items": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("saved", args.out)


if __name__ == "__main__":
    main()
