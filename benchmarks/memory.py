"""Peak memory of the command line on short and long inputs: does it grow with the text?

Each case runs the real `voicegen` command in a child process (`python -m voicegen say -f TEXT` or
`python -m voicegen podcast SCRIPT`) and records its peak resident memory (the kernel's ru_maxrss for that child,
as `/usr/bin/time -f %M` reports it) and its resident memory every half second (VmRSS), so a run shows both the
peak and how memory moves over the render.

Texts are real prose: the sentences of benchmarks/data, shuffled with a fixed seed into paragraphs of 3-6
sentences, cut at a sentence end near the asked length. Scripts: examples/episode.txt as it is, and its turns
repeated (cast header kept) until about the asked minutes of speech (~150 words a minute).

Usage:
  python benchmarks/memory.py                                  # say 1000/5000/20000 chars, podcast example + 10 min
  python benchmarks/memory.py --say 1000,3000 --podcast "" --speed 4
  python benchmarks/memory.py --code /path/to/other/checkout   # the same cases on another version (a baseline)
Writes benchmarks/results/memory-<device>-<date>[-label].json and prints a table.

`--speed 4` speaks 4x faster: the same chunks, batches, windows and allocation pattern with a quarter of the
frames, so a long text's memory behaviour can be measured in a quarter of the time (each batch's working set, and
so the absolute peak, is smaller than at speed 1; the growth with length is what it shows).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
WORDS_PER_MINUTE = 150


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def prose(chars: int, seed: int = 0) -> str:
    """About `chars` characters of text: benchmark sentences in shuffled paragraphs, ending at a sentence end."""
    sentences = [s.strip() for f in ("sentences_plain.txt", "sentences_numbers.txt")
                 for s in (DATA / f).read_text(encoding="utf-8").splitlines() if s.strip()]
    rng = random.Random(seed)
    paragraphs, paragraph, size = [], [], 0
    while size < chars:
        paragraph.append(rng.choice(sentences))
        size += len(paragraph[-1]) + 1
        if len(paragraph) >= rng.randint(3, 6):
            paragraphs.append(" ".join(paragraph))
            paragraph = []
    if paragraph:
        paragraphs.append(" ".join(paragraph))
    text = "\n\n".join(paragraphs)
    if len(text) > chars:
        cut = max(text.rfind(end, 0, chars) for end in ".?!")
        text = text[: cut + 1] if cut > 0 else text[:chars]
    return text


def script(minutes: float) -> str:
    """examples/episode.txt, its turns repeated until about `minutes` of speech (0: the episode as it is)."""
    text = (ROOT / "examples" / "episode.txt").read_text(encoding="utf-8")
    if minutes <= 0:
        return text
    head, sep, body = text.rpartition("---\n")
    words = len(body.split())
    copies = max(1, round(minutes * WORDS_PER_MINUTE / words))
    return head + sep + "\n\n".join([body.strip()] * copies) + "\n"


def run(args: list[str], code: Path, interval: float = 0.5, env: dict | None = None) -> dict:
    """Run `python -m voicegen ARGS` with `code` first on the path (and `env` added to the environment) -> peak RSS
    (MB), wall time, RSS timeline."""
    env = dict(os.environ, PYTHONPATH=str(code), **(env or {}))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "voicegen", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    timeline: list[tuple[float, int]] = []

    def sample() -> None:
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS"):
                            timeline.append((round(time.monotonic() - started, 1), int(line.split()[1]) // 1024))
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    thread.join()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"voicegen {' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    last = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("wrote ")]
    return {"peak_mb": usage.ru_maxrss // 1024, "wall_s": round(wall, 1), "timeline": timeline,
            "wrote": last[-1] if last else ""}


def audio_seconds(wrote: str) -> float | None:
    try:
        return float(wrote.split("(", 1)[1].split()[0])
    except (IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--say", default="1000,5000,20000", help="text lengths in characters, comma-separated ('' none)")
    ap.add_argument("--podcast", default="0,10", help="script minutes (0: the example episode), comma-separated")
    ap.add_argument("--speed", type=float, default=1.0, help="speaking rate for both (4: a quarter of the frames)")
    ap.add_argument("--code", default=str(ROOT), help="checkout whose voicegen to run (default: this one)")
    ap.add_argument("--label", default="", help="suffix of the result file name")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    code = Path(args.code).resolve()
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [("say", int(n)) for n in args.say.split(",") if n.strip()]
        cases += [("podcast", float(m)) for m in args.podcast.split(",") if m.strip()]
        for kind, size in cases:
            if kind == "say":
                src = tmp / f"text-{size}.txt"
                src.write_text(prose(size), encoding="utf-8")
                cmd = ["say", "-f", str(src), "-o", str(tmp / "out.flac"), "--seed", "0", "--device", args.device,
                       "--speed", str(args.speed)]
                what = f"say {len(src.read_text(encoding='utf-8'))} chars"
            else:
                src = tmp / f"script-{size}.txt"
                src.write_text(script(size), encoding="utf-8")
                cmd = ["podcast", str(src), "-o", str(tmp / "out.flac"), "--seed", "0", "--device", args.device, "-q"]
                if args.speed != 1.0:  # the podcast command has no --speed: scale every cast speed instead
                    text = src.read_text(encoding="utf-8")
                    src.write_text(_scale_cast(text, args.speed), encoding="utf-8")
                what = f"podcast {'example' if size <= 0 else f'~{size:g} min'}"
            log(f"running {what} ...")
            result = run(cmd, code)
            result.update(case=what, kind=kind, input_chars=len(src.read_text(encoding="utf-8")),
                          audio_s=audio_seconds(result["wrote"]))
            log(f"  peak {result['peak_mb']} MB, {result['audio_s']} s of audio, {result['wall_s']} s")
            rows.append(result)
    print(f"\n{'case':28s} {'chars':>7s} {'audio s':>8s} {'peak MB':>8s} {'vs first':>9s} {'wall s':>7s}")
    for r in rows:
        first = next(x for x in rows if x["kind"] == r["kind"])
        print(f"{r['case']:28s} {r['input_chars']:7d} {r['audio_s'] or 0:8.1f} {r['peak_mb']:8d} "
              f"{r['peak_mb'] - first['peak_mb']:+9d} {r['wall_s']:7.1f}")
    date = datetime.date.today().isoformat()
    out = ROOT / "benchmarks" / "results" / f"memory-{args.device}-{date}{'-' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": date, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "code": str(code), "commit": commit, "speed": args.speed,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "rows": rows,
    }, indent=1))
    log(f"wrote {out}")


def _scale_cast(text: str, factor: float) -> str:
    """Multiply each cast line's speed (default 1.0) in a script's header by `factor`."""
    lines, inside, out = text.splitlines(), False, []
    for line in lines:
        if line.strip() == "---":
            inside = not inside
        elif inside and ":" in line:
            name, _, rest = line.partition(":")
            parts = [p.strip() for p in rest.split(",")]
            speed = next((float(p.split("=")[1]) for p in parts if p.startswith("speed=")), 1.0)
            parts = [p for p in parts if not p.startswith("speed=")] + [f"speed={speed * factor:g}"]
            line = f"{name}: {', '.join(parts)}"
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
