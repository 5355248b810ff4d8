"""Ctrl-C stress run: `python -m voicegen say` interrupted at random moments of its start and render, the package
at a git revision ("before") and this checkout ("after") alternating, each try in a fresh process.

A try is right when the process exits 130, prints exactly "voicegen: interrupted" on stderr, and leaves nothing
beside its output path (no file, no temporary); with `--signal TERM` or `HUP`, 128 + the signal and "voicegen:
terminated". Anything else is recorded by its exit status and the last line of
its stderr. The moments are drawn from `--delays` (seconds after the process starts), the same sequence for both
versions: the start (imports, the weight cache, the voices) is where native code can swallow, replace or turn
an interrupt into an abort (voicegen/interrupts.py); tests/test_robustness.py holds each case found.

Usage:
  python benchmarks/ctrl_c.py --baseline 66b130d --tries 60
  python benchmarks/ctrl_c.py --baseline 66b130d --tries 20 --signal TERM --delays 0.3,1,2,3,4
Writes benchmarks/results/ctrl-c-<date>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import before_after  # noqa: E402 - benchmarks/ is on sys.path (this script's directory)

ROOT = before_after.ROOT
TEXT = "This sentence is repeated to build a text for the engine to speak. " * 12


def package_of(path: Path) -> str:
    """The voicegen a child with PYTHONPATH=path imports (it must be the one under `path`)."""
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run([sys.executable, "-c", "import voicegen; print(voicegen.__file__)"], env=env, cwd="/",
                          capture_output=True, text=True, check=True).stdout.strip()


def one_try(path: Path, delay: float, signum: int = signal.SIGINT) -> str:
    """`say` from the package under `path`, `signum` `delay` s after the start -> "ok" or what went wrong."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source, out = folder / "input.txt", folder / "out" / "speech.wav"
        source.write_text(TEXT)
        out.parent.mkdir()
        env = dict(os.environ, PYTHONPATH=str(path), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "voicegen", "say", "-f", str(source), "-o", str(out),
                                 "--device", "cpu", "--seed", "1"], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL))
        time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=600)
        err = err.decode("utf-8", "replace")
        # what is left, a temporary's random part starred (the same outcome counts once)
        left = sorted(re.sub(r"\.[^.]+\.part$", ".*.part", p.name) for p in out.parent.iterdir())
    line = "voicegen: interrupted\n" if signum == signal.SIGINT else "voicegen: terminated\n"
    if proc.returncode == 128 + signum and err == line and not left:
        return "ok"
    last = (err.strip().splitlines() or ["(nothing)"])[-1][:160]
    return f"exit {proc.returncode}" + (f", left {left}" if left else "") + f": {last}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git revision of the 'before' package (default main)")
    parser.add_argument("--tries", type=int, default=60, help="interrupts per version (default 60)")
    parser.add_argument("--delays", default="0.05,0.1,0.2,0.3,0.35,0.4,0.45,0.5,0.6,0.8,1.0,1.3",
                        help="seconds after the start at which to interrupt, drawn at random (comma-separated)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn delays")
    parser.add_argument("--signal", default="INT", choices=["INT", "TERM", "HUP"],
                        help="what to send: INT (Ctrl-C, the default), TERM (kill) or HUP (the terminal closed)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/ctrl-c-<date>.json)")
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",")]
    signum = getattr(signal, f"SIG{args.signal}")
    draw = random.Random(args.seed)
    moments = [draw.choice(delays) for _ in range(args.tries)]
    with tempfile.TemporaryDirectory() as exported:
        before_after.export(args.baseline, Path(exported))
        versions = {"before": Path(exported), "after": ROOT}
        for name, path in versions.items():
            package = Path(package_of(path)).resolve()
            if package.parent.parent != path.resolve():
                raise RuntimeError(f"the {name} child imports {package}, not the voicegen under {path}")
        outcomes = {name: [] for name in versions}
        for k, delay in enumerate(moments):
            for name, path in versions.items():
                outcomes[name].append({"delay_s": delay, "outcome": one_try(path, delay, signum)})
            print(f"\r{k + 1}/{args.tries}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    summary = {name: dict(Counter(o["outcome"] for o in runs).most_common()) for name, runs in outcomes.items()}
    path = before_after.write_report("ctrl-c", args.baseline, args.out, signal=f"SIG{args.signal}", tries=args.tries,
                                     delays_s=delays, summary=summary, outcomes=outcomes)
    for name, counts in summary.items():
        print(f"{name:7} right {counts.get('ok', 0)}/{args.tries}")
        for outcome, n in counts.items():
            if outcome != "ok":
                print(f"{'':7} {n:3d} x {outcome}")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
