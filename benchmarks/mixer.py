"""Mixer benchmark: the time to mix and loudness-normalize a one-minute two-speaker episode (no model in what is
timed).

The episode is synthetic but speech-like: turns of 2-7 s alternating between two speakers panned left and right,
each a voiced buzz (a 100-240 Hz fundamental with harmonics and a gliding pitch) under a 3-5 Hz syllable
envelope, breath noise, a few plosive clicks far above the speech level (so the true-peak limiter has work, as
it has on real model output), and near-silent edges (so trimming has work); some turns come in two pieces
joined by `join_pieces`, as `voicegen.podcast.render` does. What is timed is what the podcast path does after
rendering: `join_pieces` per turn, `EpisodeWriter.add_turn` (trim, fade, pan, loudness metering) and `close()`
(gain search with the true-peak limiter, the limited output), in memory (`--file`: also streamed to a WAV file).

`--script`: the one-minute two-speaker script of `benchmarks/throughput.py` instead, its pieces rendered once by
the model on the CPU (seed 0, ~20 s) and replayed to `voicegen.podcast.render.mix_script`, so that what is mixed is
real model output with the script's own turns, pauses and pans, and what is timed is the whole mixing of an
episode from rendered pieces: the script's per-minute figure of issue 11 in a process that has not just rendered
(in `throughput.py` the mixer's calls are timed inside the renders, in the engine's own process, where its first
writes to fresh memory cost more: benchmarks/RESULTS.md, eighth session). Figures are then per minute of the episode.

"Before" and "after" run in the same invocation, alternating, each in its own child process: "after" is this
checkout, "before" the package at `--baseline` (a git revision, exported with `git archive`).

Usage:
  python benchmarks/mixer.py                      # this checkout vs main
  python benchmarks/mixer.py --baseline HEAD~3 --repeats 7 --file
  python benchmarks/mixer.py --script --repeats 7 --rounds 2
Writes benchmarks/results/mixer-<date>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import before_after  # noqa: E402 - benchmarks/ is on sys.path (this script's directory, or the child's)

ROOT = Path(__file__).resolve().parents[1]
SR = 24000


def episode_turns(minutes: float = 1.0, seed: int = 0):
    """[(speaker, pan, [pieces (N,) float32], words per piece)] adding up to ~`minutes` of speech."""
    import numpy as np

    rng = np.random.default_rng(seed)
    turns, total, k = [], 0.0, 0
    while total < minutes * 60:
        speaker, pan = ("Host", -0.3) if k % 2 == 0 else ("Guest", 0.3)
        pieces = []
        for _ in range(1 + int(rng.random() < 0.3)):
            seconds = rng.uniform(2.0, 5.0)
            n = int(seconds * SR)
            t = np.arange(n) / SR
            f0 = rng.uniform(100, 240) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
            phase = 2 * np.pi * np.cumsum(f0) / SR
            buzz = sum(np.sin(h * phase) / h for h in range(1, 12))
            syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 1.5
            x = 0.08 * buzz * syllables + 0.01 * rng.standard_normal(n) * (0.3 + syllables)
            x[rng.integers(0, n, 6)] += rng.uniform(0.4, 0.8, 6) * rng.choice([-1, 1], 6)  # plosive clicks
            edge = int(0.15 * SR)  # near-silent edges: trimmed by add_turn
            x[:edge] *= 1e-4
            x[-edge:] *= 1e-4
            pieces.append(x.astype(np.float32))
            total += seconds
        turns.append((speaker, pan, pieces))
        k += 1
    return turns


def record_script(path: Path) -> None:
    """Render the one-minute script's pieces once (CPU, seed 0) and pickle (script, voices, rendered pieces in
    request order) to `path`, for `time_script_mixing` to replay."""
    import pickle

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from throughput import one_minute_script

    from voicegen import Engine
    from voicegen.podcast import render

    engine = Engine(device="cpu")
    script = render.prepare(engine, one_minute_script())
    batches = render._EngineBatches(engine, 1.0, 0)
    pieces = []

    def recording(requests, **kwargs):
        out = batches(requests, **kwargs)
        pieces.extend(out)
        return out

    try:
        render.mix_script(script, recording, voices=engine.voices)
    finally:
        batches.close()
    path.write_bytes(pickle.dumps((script, list(engine.voices), pieces)))


def time_script_mixing(repeats: int, recorded: str) -> dict:
    """Runs in a child process with the package under test first on sys.path: `mix_script` of the recorded
    script, its pieces replayed (no model), `repeats` times after one warm-up."""
    import pickle

    import numpy as np

    from voicegen import loudness
    from voicegen.podcast.render import mix_script

    script, voices, pieces = pickle.loads(Path(recorded).read_bytes())

    def mix():
        replay = iter(pieces)
        return mix_script(script, lambda requests, **kwargs: [next(replay) for _ in requests], voices=voices)

    episode = mix()  # warm-up (filter designs, caches)
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        episode = mix()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    samples = episode.samples
    return {
        "speech_s": sum(len(p.samples) for p in pieces) / SR,
        "episode_s": len(samples) / SR,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "file_times_s": [],
        "lufs": loudness.integrated_loudness(samples, SR),
        "true_peak_dbtp": loudness.true_peak_dbtp(samples, SR),
        "checksum": float(np.abs(samples.astype(np.float64)).sum()),
    }


def time_mixing(repeats: int, to_file: bool) -> dict:
    """Runs in a child process with the package under test first on sys.path."""
    import numpy as np

    from voicegen.audio import Audio, Segment, Word
    from voicegen.podcast.mix import EpisodeWriter, join_pieces

    turns = episode_turns()
    audios = []
    for speaker, pan, pieces in turns:
        audio = []
        for x in pieces:
            d = len(x) / SR
            words = tuple(Word(f"w{i}", i * d / 8, (i + 0.8) * d / 8) for i in range(8))
            audio.append(Audio(x, SR, [Segment("text", 0.0, d, words=words)]))
        audios.append((speaker, pan, audio))

    import inspect

    # as voicegen.podcast.render calls it: the joined samples handed over (a baseline without `copy` copies them)
    handover = {"copy": False} if "copy" in inspect.signature(EpisodeWriter.add_turn).parameters else {}


    stages = {"turns": [], "close": []}  # CPU seconds: join_pieces + add_turn of every turn; close()

    def mix(path):
        c0 = time.process_time()
        writer = EpisodeWriter(path, stereo=True)
        try:
            for speaker, pan, pieces in audios:
                turn = join_pieces(pieces, SR, fade_ends=False)
                writer.add_turn(turn, speaker=speaker, text="text", pan=pan, **handover)
            c1 = time.process_time()
            writer.close()
        except BaseException:
            writer.abort()
            raise
        c2 = time.process_time()
        stages["turns"].append(c1 - c0)
        stages["close"].append(c2 - c1)
        return writer

    times, cpu_times, file_times = [], [], []
    writer = mix(None)  # warm-up (filter designs, caches)
    stages = {"turns": [], "close": []}
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        writer = mix(None)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    turn_cpu, close_cpu = list(stages["turns"]), list(stages["close"])
    if to_file:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(repeats):
                t0 = time.perf_counter()
                mix(Path(tmp) / "episode.wav")
                file_times.append(time.perf_counter() - t0)
    from voicegen import loudness

    samples = writer.audio.samples
    return {
        "speech_s": sum(len(x) for _, _, p in turns for x in p) / SR,
        "episode_s": len(samples) / SR,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "turns_cpu_s": turn_cpu,
        "close_cpu_s": close_cpu,
        "file_times_s": file_times,
        "lufs": loudness.integrated_loudness(samples, SR),
        "true_peak_dbtp": loudness.true_peak_dbtp(samples, SR),
        "checksum": float(np.abs(samples.astype(np.float64)).sum()),
    }


def child(path: Path, repeats: int, to_file: bool, recorded: Path | None = None) -> dict:
    call = (f"time_script_mixing({repeats}, {str(recorded)!r})" if recorded is not None
            else f"time_mixing({repeats}, {to_file})")
    return before_after.child(path, "mixer", call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git revision of the 'before' code (default: main)")
    parser.add_argument("--repeats", type=int, default=5, help="timed mixes per round")
    parser.add_argument("--rounds", type=int, default=2, help="before/after child processes, alternating")
    parser.add_argument("--file", action="store_true", help="also time streaming the episode to a WAV file")
    parser.add_argument("--script", action="store_true",
                        help="mix the one-minute script's pieces, rendered once by the model (figures per episode "
                             "minute)")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.script and args.file:
        parser.error("--file times the synthetic episode only")

    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        baseline.mkdir()
        before_after.export(args.baseline, baseline)
        recorded = None
        if args.script:
            recorded = Path(tmp) / "script.pickle"
            print("rendering the one-minute script once (CPU)...", file=sys.stderr, flush=True)
            record_script(recorded)
        for _ in range(args.rounds):
            runs["before"].append(child(baseline, args.repeats, args.file, recorded))
            runs["after"].append(child(ROOT, args.repeats, args.file, recorded))
    import numpy as np

    summary = {}
    for name, rs in runs.items():
        times = [t for r in rs for t in r["times_s"]]
        cpu = [t for r in rs for t in r["cpu_times_s"]]
        turns = [t for r in rs for t in r.get("turns_cpu_s", [])]
        close = [t for r in rs for t in r.get("close_cpu_s", [])]
        file_times = [t for r in rs for t in r["file_times_s"]]
        minutes = rs[0]["episode_s" if args.script else "speech_s"] / 60
        summary[name] = {
            "median_s": float(np.median(times)), "min_s": float(np.min(times)),
            "cpu_median_s": float(np.median(cpu)), "cpu_min_s": float(np.min(cpu)),
            "per": "episode minute" if args.script else "speech minute",
            "median_ms_per_speech_minute": 1000 * float(np.median(times)) / minutes,
            "cpu_ms_per_speech_minute": 1000 * float(np.median(cpu)) / minutes,
            "turns_cpu_ms_per_speech_minute": 1000 * float(np.median(turns)) / minutes if turns else None,
            "close_cpu_ms_per_speech_minute": 1000 * float(np.median(close)) / minutes if close else None,
            "file_median_s": float(np.median(file_times)) if file_times else None,
            "speech_s": rs[0]["speech_s"], "episode_s": rs[0]["episode_s"],
            "lufs": rs[0]["lufs"], "true_peak_dbtp": rs[0]["true_peak_dbtp"], "checksum": rs[0]["checksum"],
        }
    speedup = summary["before"]["median_s"] / summary["after"]["median_s"]
    cpu_speedup = summary["before"]["cpu_median_s"] / summary["after"]["cpu_median_s"]
    out = before_after.write_report("mixer", args.baseline, args.out, summary=summary, speedup=speedup,
                                    cpu_speedup=cpu_speedup, runs=runs)
    per = "episode min" if args.script else "speech min"

    def cell(value, width):
        return f"{value:{width}.1f}" if value is not None else f"{'-':>{width}}"

    print(f"{'code':8} {'median ms':>9} {'min ms':>7} {'CPU ms':>7} {'ms/' + per:>15} {'CPU ms/' + per:>19} "
          f"{'turns':>6} {'close':>6} {'to file ms':>10} {'LUFS':>7} {'dBTP':>6}")
    for name, s in summary.items():
        f = "-" if s["file_median_s"] is None else f"{1000 * s['file_median_s']:.0f}"
        print(f"{name:8} {1000 * s['median_s']:9.1f} {1000 * s['min_s']:7.1f} {1000 * s['cpu_median_s']:7.1f} "
              f"{s['median_ms_per_speech_minute']:15.1f} {s['cpu_ms_per_speech_minute']:19.1f} "
              f"{cell(s['turns_cpu_ms_per_speech_minute'], 6)} {cell(s['close_cpu_ms_per_speech_minute'], 6)} "
              f"{f:>10} {s['lufs']:7.2f} {s['true_peak_dbtp']:6.2f}")
    print(f"medians; per {per}ute: wall and CPU ms per minute of {'the episode' if args.script else 'speech'}; "
          "turns, close: CPU ms per minute in join_pieces + add_turn for every turn (trim, fade, pan, metering) "
          "and in close() (gain search, limiter, output)")
    what = "the one-minute script's rendered pieces" if args.script else "a synthetic episode"
    print(f"{what}: {summary['after']['speech_s']:.1f} s of speech, {summary['after']['episode_s']:.1f} s mixed, "
          f"{SR} Hz; after is {speedup:.2f}x faster than {args.baseline} in wall time, {cpu_speedup:.2f}x in CPU "
          f"time (medians, same run); JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
