"""Voice fitting benchmark: recover known voices from their own audio, judged by an independent speaker model.

For each target voice (a built-in voice, and a blend never seen before):

1. The target speaks the training sentences (one recording, sentence pauses included).
2. `voicegen.fit_voice` fits a voice to that recording, starting from the nearest candidate voice. For a
   built-in target the candidates (start and blend directions) are the *other* built-in voices, so the answer
   is not among them; for a blend target they are the five built-in voices, and the blend itself is new.
3. The held-out sentences are rendered with the fitted voice, the true voice, the start voice and every
   built-in voice. The speaker judge (Resemblyzer, `voicegen.eval.speaker`; never part of the fit's objective)
   embeds each voice's held-out clips; we report the similarity of the start and the fitted voice to the true
   voice, and whether the fitted voice is closer to the true voice than to every other built-in voice.
4. Durations: the recording is our own rendering, so its true phoneme durations are known. We report how far
   (mean |error| of phoneme start times, 40 Hz frames) the start voice's own durations (a forward pass) and the
   durations aligned to the recording with the start voice and with the final voice are from them.
5. Whisper tiny.en transcribes the held-out clips of the fitted and the true voice (WER, plain sentences).

    python benchmarks/voices.py                                  # defaults below (tens of minutes on 2 cores)
    python benchmarks/voices.py --targets jf_nezumi --steps 8 --train 1 --held 2 --asr 0   # a quick look
    python benchmarks/voices.py --device cuda --judge 0 --asr 0 --targets jf_nezumi --train 2   # fitting time only

Prints a table and writes JSON (default benchmarks/results/voices-<device>-<date>.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without relying on the editable install

from voicegen import Engine, Request
from voicegen.constants import SAMPLE_RATE
from voicegen.fit import fit_voice
from voicegen.weights import builtin_voices

SENTENCES = ROOT / "benchmarks" / "data" / "sentences_plain.txt"
HELD_OFFSET = 20
"""Held-out sentences start at this line of the sentence file (training sentences come from its top)."""


def boundary_error(durations, true) -> float:
    """Mean |difference| in 40 Hz frames between the phoneme start times of two duration lists (per chunk)."""
    errors = [np.abs(np.cumsum(d.numpy())[:-1] - np.cumsum(t.numpy())[:-1]) for d, t in zip(durations, true)]
    return float(np.concatenate(errors).mean())


def render(engine: Engine, sentences: list[str], voice, seed: int = 100) -> list[np.ndarray]:
    return [a.samples for a in engine.synthesize_many([Request(s, voice, seed=seed + i) for i, s in enumerate(sentences)])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="jf_nezumi,jf_tebukuro:3+jm_kumo:2",
                        help="comma-separated target voices (names or blends)")
    parser.add_argument("--train", type=int, default=3, help="training sentences (one recording)")
    parser.add_argument("--held", type=int, default=4, help="held-out sentences")
    parser.add_argument("--steps", type=int, default=40, help="most fitting steps (it stops early)")
    parser.add_argument("--lr", type=float, default=None, help="Adam step of the blend weights (default: fit_voice's)")
    parser.add_argument("--offset-lr", type=float, default=None, help="Adam step of the offset (default: fit_voice's)")
    parser.add_argument("--batch-seconds", type=float, default=8.0, help="seconds of recording per step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--asr", type=int, default=1, help="1: Whisper WER of fitted vs true voice; 0: skip")
    parser.add_argument("--judge", type=int, default=1,
                        help="1: speaker similarity by the independent judge (resemblyzer); 0: fitting time and loss "
                             "only (for a machine without the judge, e.g. the GPU bundle)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/voices-<device>-<date>.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    lines = [s for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s.strip()]
    train, held = lines[: args.train], lines[HELD_OFFSET : HELD_OFFSET + args.held]
    engine = Engine(device=args.device)
    builtins = sorted(builtin_voices())
    judge, held_audio, embeddings = None, {}, {}
    if args.judge:
        from voicegen.eval.speaker import SpeakerJudge, cosine

        judge = SpeakerJudge()
        t0 = time.monotonic()
        held_audio = {v: render(engine, held, v) for v in builtins}
        embeddings = {v: judge.embed_speaker(clips) for v, clips in held_audio.items()}
        print(f"held-out renders of {len(builtins)} built-in voices: {time.monotonic() - t0:.0f} s", flush=True)
    transcriber = None
    if args.asr and args.judge:
        from voicegen.eval.asr import Transcriber
        from voicegen.eval.wer import corpus_word_error_rate

        transcriber = Transcriber()

    today = datetime.date.today().isoformat()
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"voices-{torch.device(args.device).type}-{today}.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(results: list) -> None:
        out.write_text(json.dumps({
            "date": today,
            "command": "python benchmarks/voices.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
                        "load_average_1min_at_end": round(os.getloadavg()[0], 1)},
            "train": train,
            "held": held,
            "results": results,
        }, indent=1, ensure_ascii=False))

    results = []
    for target in args.targets.split(","):
        target = target.strip()
        plan = engine.plan(Request(" ".join(train), target, seed=5))
        engine.renderer.render(plan.items)
        recording = engine.assemble(plan).samples
        true_durations = [it.durations for it in plan.items]
        candidates = [v for v in builtins if v != target]
        report: list = []
        started = time.monotonic()
        last = [0.0]

        def progress(step, steps, loss, _last=last, _started=started):
            if time.monotonic() - _last[0] > 30 or step == steps:
                print(f"  {target}: step {step}/{steps} loss {loss:.4f} ({time.monotonic() - _started:.0f} s)", flush=True)
                _last[0] = time.monotonic()

        rates = {k: v for k, v in (("lr", args.lr), ("offset_lr", args.offset_lr)) if v is not None}
        voice = fit_voice(recording, SAMPLE_RATE, " ".join(train), name="fitted", candidates=candidates,
                          steps=args.steps, batch_seconds=args.batch_seconds, engine=engine, progress=progress,
                          report=report, **rates)
        fit_s = time.monotonic() - started
        fit = report[0]
        row = {
            "target": target,
            "recording_s": round(len(recording) / SAMPLE_RATE, 2),
            "start": fit.start,
            "start_scores": {k: round(v, 4) for k, v in fit.start_scores.items()},
            "steps": len(fit.losses),
            "stopped_early": fit.stopped_early,
            "fit_s": round(fit_s, 1),
            "loss_first": round(fit.losses[0]["loss"], 4),
            "loss_last": round(fit.losses[-1]["loss"], 4),
            "losses": [{k: round(v, 4) if isinstance(v, float) else v for k, v in e.items()} for e in fit.losses],
        }
        if judge is None:  # timing only
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "losses"}), flush=True)
            write(results)
            continue
        from voicegen.fit import align_recording, render_chunks

        start_items = render_chunks(engine, plan.chunks, engine.voice_table(fit.start))
        at_start = align_recording(recording, plan.chunks, start_items)
        true_audio = held_audio.get(target) or render(engine, held, target)
        true = embeddings.get(target)
        if true is None:
            true = judge.embed_speaker(true_audio)
        fitted_audio = render(engine, held, voice)
        fitted = judge.embed_speaker(fitted_audio)
        to_builtin = {v: cosine(fitted, embeddings[v]) for v in builtins if v != target}
        row.update({
            "similarity_start": round(cosine(embeddings[fit.start], true), 4),
            "similarity_fitted": round(cosine(fitted, true), 4),
            "similarity_fitted_to_other_builtins": {k: round(v, 4) for k, v in to_builtin.items()},
            "closer_to_true_than_any_other_builtin": bool(cosine(fitted, true) > max(to_builtin.values())),
            "duration_error_frames_forward_pass": round(boundary_error([it.durations for it in start_items], true_durations), 3),
            "alignment_error_frames_start": round(boundary_error(at_start.durations, true_durations), 3),
            "alignment_error_frames_final": round(boundary_error(fit.target.durations, true_durations), 3),
            "pitch": voice.pitch,
            "speed": voice.speed,
            "blend": voice.provenance["blend"],
            "offset_norm": voice.provenance["offset_norm"],
        })
        if transcriber is not None:
            hyp_fit = [transcriber(a, SAMPLE_RATE) for a in fitted_audio]
            hyp_true = [transcriber(a, SAMPLE_RATE) for a in true_audio]
            row["wer_fitted"] = round(corpus_word_error_rate(held, hyp_fit), 4)
            row["wer_true"] = round(corpus_word_error_rate(held, hyp_true), 4)
            row["wer_ok"] = row["wer_fitted"] <= row["wer_true"] + 0.02
            row["transcripts_fitted"] = hyp_fit
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("losses", "transcripts_fitted")}), flush=True)
        write(results)  # after every target, so a long run that is stopped keeps what it measured

    write(results)
    print()
    print("| target | rec. s | start | steps | fit s | loss first → last | sim. start → fitted | nearest other built-in | closer | WER fitted / true |")
    print("|---|---:|---|---:|---:|---|---|---|---|---|")
    for r in results:
        if "similarity_fitted" not in r:
            print(f"| {r['target']} | {r['recording_s']} | {r['start']} | {r['steps']} | {r['fit_s']:.0f} | "
                  f"{r['loss_first']:.3f} → {r['loss_last']:.3f} | – | – | – | – |")
            continue
        other = max(r["similarity_fitted_to_other_builtins"].items(), key=lambda kv: kv[1])
        wer = f"{r['wer_fitted']:.3f} / {r['wer_true']:.3f}" if "wer_fitted" in r else "–"
        print(f"| {r['target']} | {r['recording_s']} | {r['start']} | {r['steps']} | {r['fit_s']:.0f} | "
              f"{r['loss_first']:.3f} → {r['loss_last']:.3f} | {r['similarity_start']:.3f} → {r['similarity_fitted']:.3f} | "
              f"{other[0]} {other[1]:.3f} | {'yes' if r['closer_to_true_than_any_other_builtin'] else 'no'} | {wer} |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
