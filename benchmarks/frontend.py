"""Frontend benchmark: the time to turn text into the model's tokens (normalize, split into sentences, phonemize,
chunk), before and after a change, in one run. It is the first stage of the one-minute script's latency (issue 14:
10 ms of the script's 0.14 s on the H200's host, benchmarks/RESULTS.md, tenth session).

Texts: the one-minute two-speaker script's pieces (benchmarks/throughput.py) and the texts of throughput.py's
corpus of about `--minutes` of speech, through `voicegen.text.Frontend()` (the engine's own, without the model).
In each child process, per text set: one pass with the phoneme cache cold (espeak-ng runs for every new word; the
script first, so the corpus shares some of its words), then `--repeats` passes with it warm, which is what a warm
engine rendering the same script again sees (throughput.py's script stage). The tokens' digest must be the same
before and after: the change is only in time.

"Before" is the package at `--baseline` (a git revision, `git archive`), "after" this checkout, each in its own
child process, alternating `--rounds` times (benchmarks/before_after.py).

Usage:
  python benchmarks/frontend.py                        # this checkout vs main
  python benchmarks/frontend.py --baseline HEAD~1 --repeats 30 --rounds 3
Writes benchmarks/results/frontend-<date>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import before_after  # noqa: E402 - benchmarks/ is on sys.path (this script's directory, or the child's)

ROOT = Path(__file__).resolve().parents[1]


def time_frontend(repeats: int, minutes: float) -> dict:
    """Runs in a child process with the package under test first on sys.path."""
    import voicegen  # noqa: F401 - before throughput, which puts this checkout first on sys.path when imported
    from voicegen.podcast.script import Pause
    from voicegen.text import Frontend

    from throughput import build_corpus, one_minute_script

    frontend = Frontend()
    script = [p for turn in one_minute_script().turns for p in turn.pieces if not isinstance(p, Pause)]
    corpus = [request.text for request in build_corpus(minutes)]
    out = {}
    for name, texts in (("script", script), ("corpus", corpus)):
        t0 = time.perf_counter()
        tokens = [chunk.tokens for text in texts for chunk in frontend(text)]
        first = time.perf_counter() - t0
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for text in texts:
                frontend(text)
            warm.append(time.perf_counter() - t0)
        out[name] = {"texts": len(texts), "characters": sum(len(t) for t in texts),
                     "tokens": sum(len(t) for t in tokens), "first_s": first, "warm_s": warm,
                     "digest": hashlib.sha256(json.dumps([list(t) for t in tokens]).encode()).hexdigest()[:16]}
    return out


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git revision of the 'before' code (default: main)")
    parser.add_argument("--repeats", type=int, default=20, help="warm passes per text set and child process")
    parser.add_argument("--rounds", type=int, default=3, help="before/after child processes, alternating")
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of speech in the corpus's texts")
    parser.add_argument("--out")
    args = parser.parse_args()
    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        baseline.mkdir()
        before_after.export(args.baseline, baseline)
        call = f"time_frontend({args.repeats}, {args.minutes})"
        for _ in range(args.rounds):
            runs["before"].append(before_after.child(baseline, "frontend", call))
            runs["after"].append(before_after.child(ROOT, "frontend", call))
    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            texts: {"warm_median_s": float(np.median([t for r in rs for t in r[texts]["warm_s"]])),
                    "warm_min_s": float(np.min([t for r in rs for t in r[texts]["warm_s"]])),
                    "first_median_s": float(np.median([r[texts]["first_s"] for r in rs])),
                    "texts": rs[0][texts]["texts"], "characters": rs[0][texts]["characters"],
                    "tokens": rs[0][texts]["tokens"], "digest": rs[0][texts]["digest"]}
            for texts in ("script", "corpus")}
    speedup = {texts: {kind: summary["before"][texts][kind] / summary["after"][texts][kind]
                       for kind in ("warm_median_s", "warm_min_s", "first_median_s")} for texts in ("script", "corpus")}
    same = all(summary["before"][t]["digest"] == summary["after"][t]["digest"] for t in ("script", "corpus"))
    out = before_after.write_report("frontend", args.baseline, args.out, same_tokens=same, summary=summary,
                                    speedup=speedup, runs=runs)
    print(f"{'code':8} {'texts':>7} {'chars':>7} {'warm ms':>8} {'warm min':>9} {'first ms':>9}")
    for name, s in summary.items():
        for texts, r in s.items():
            print(f"{name:8} {texts:>7} {r['characters']:7d} {1e3 * r['warm_median_s']:8.2f} "
                  f"{1e3 * r['warm_min_s']:9.2f} {1e3 * r['first_median_s']:9.1f}")
    print(f"after vs {args.baseline} (same run; medians, then minima of the warm passes, which scatter on a shared "
          f"machine): script {speedup['script']['warm_median_s']:.2f}x / {speedup['script']['warm_min_s']:.2f}x warm, "
          f"{speedup['script']['first_median_s']:.2f}x cold; corpus {speedup['corpus']['warm_median_s']:.2f}x / "
          f"{speedup['corpus']['warm_min_s']:.2f}x warm, {speedup['corpus']['first_median_s']:.2f}x cold; same tokens: "
          f"{same}; JSON: {out}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
