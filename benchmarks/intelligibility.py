"""Intelligibility benchmark: Whisper tiny.en word error rate per voice, voicegen vs. the ONNX reference.

Both systems speak the same sentences with the same built-in voices, in one run:

* voicegen: ``Engine(device="cpu")``, every sentence of a voice in one batched ``synthesize_many`` call,
  through voicegen's own text frontend (normalization, misaki-style phonemes).
* reference: the published Kokoro-82M v1.0 int8 ONNX file on onnxruntime, fed plain espeak-ng phonemes of
  the raw sentence (no normalization; en-us, punctuation and stress kept), filtered to the model's
  vocabulary and cut to 510 tokens.

Whisper tiny.en (``voicegen.eval.asr.Transcriber``) transcribes every clip, and the WER of each voice and
sentence set is scored against the raw sentence text with ``voicegen.eval.wer.corpus_word_error_rate``. With
``--dnsmos``, DNSMOS P.835 (``voicegen.eval.dnsmos``) scores every clip too: the mean overall, signal and background
scores per voice, set and system.

Sets: ``plain`` and ``numbers`` are sentences of our own (``benchmarks/data``), which the frontend was tuned on;
``held-out`` is real text none of us wrote, the ``test`` split of ``benchmarks/heldout.py`` (sentences of Python's
own documentation, chosen by a fixed rule): the set to report. ``held-out-dev`` is its other half, to look at.

    python benchmarks/intelligibility.py                       # plain and numbers (minutes on a small CPU)
    python benchmarks/intelligibility.py --sets held-out --limit 100 --dnsmos
    python benchmarks/intelligibility.py --limit 2 --voices jf_alpha --threads 1

Prints a table (voice x set x system, means over voices, voicegen - reference) and writes a JSON file with
the numbers, the machine, and every transcript (default: benchmarks/results/intelligibility-<date>.json).
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without relying on the editable install

from voicegen import Engine, Request
from voicegen.constants import MAX_PHONEMES, SAMPLE_RATE
from voicegen.eval.asr import Transcriber
from voicegen.eval.reference import OnnxReference
from voicegen.eval.wer import corpus_word_error_rate, word_error_rate
from voicegen.text import VOCAB
from voicegen.text.phonemize import ALPHABETS, DEFAULT_ALPHABET, setup_espeak
from voicegen.weights import builtin_voices, style_for

HERE = ROOT / "benchmarks"
sys.path.insert(0, str(HERE))
import heldout  # noqa: E402

SETS = {"plain": HERE / "data" / "sentences_plain.txt", "numbers": HERE / "data" / "sentences_numbers.txt",
        "held-out": "test", "held-out-dev": "dev"}  # a file of our own sentences, or a split of heldout.py
DEFAULT_SETS = ("plain", "numbers")
SYSTEMS = ("voicegen", "reference")


@dataclass
class Timing:
    """Wall seconds one system spent rendering audio, and the judge spent transcribing that audio."""

    synth_s: float = 0.0
    asr_s: float = 0.0
    audio_s: float = 0.0


@dataclass
class Results:
    """Transcripts and WERs: ``wer[system][voice][set]``, ``transcripts[system][voice][set]`` (one per sentence)."""

    wer: dict = field(default_factory=lambda: {s: {} for s in SYSTEMS})
    dnsmos: dict = field(default_factory=lambda: {s: {} for s in SYSTEMS})  # [system][voice][set] -> mean scores
    transcripts: dict = field(default_factory=lambda: {s: {} for s in SYSTEMS})
    timing: dict = field(default_factory=lambda: {s: Timing() for s in SYSTEMS})


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_sets(names: list[str], limit: int | None) -> dict[str, list[str]]:
    """Sentence set name -> its sentences (non-empty lines), the first ``limit`` of each."""
    sets = {}
    for name in names:
        if isinstance(SETS[name], str):
            sets[name] = heldout.held_out(SETS[name], limit)
            continue
        lines = [line.strip() for line in SETS[name].read_text(encoding="utf-8").splitlines()]
        sets[name] = [line for line in lines if line][:limit]
    return sets


class EspeakTokens:
    """Raw text -> reference tokens: plain espeak-ng IPA (en-us, stress and punctuation kept) filtered to the
    model vocabulary, at most MAX_PHONEMES. No normalization and no IPA -> misaki mapping."""

    def __init__(self, language: str = "en-us"):
        setup_espeak()  # the espeak-ng library and data shipped in espeakng_loader, as voicegen uses them
        from phonemizer.backend import EspeakBackend

        self._backend = EspeakBackend(language, preserve_punctuation=True, with_stress=True)

    def phonemes(self, text: str) -> str:
        ipa = self._backend.phonemize([text], strip=True, njobs=1)[0]
        return "".join(c for c in ipa if c in VOCAB)[:MAX_PHONEMES]

    def __call__(self, text: str) -> list[int]:
        return [VOCAB[c] for c in self.phonemes(text)]


def render_voicegen(engine: Engine, voice: str, sentences: list[str]) -> list[np.ndarray]:
    """All sentences in one batched call; sentence ``i`` gets seed ``i``. (N,) float32 clips at 24 kHz."""
    clips = engine.synthesize_many([Request(text, voice=voice, seed=i) for i, text in enumerate(sentences)])
    for clip in clips:
        assert clip.sample_rate == SAMPLE_RATE, clip.sample_rate
    return [clip.samples for clip in clips]


def render_reference(reference: OnnxReference, table: np.ndarray, tokenize: EspeakTokens,
                     sentences: list[str]) -> list[np.ndarray]:
    """One onnxruntime run per sentence (the export is batch 1); an empty clip if espeak gave no token."""
    clips = []
    for text in sentences:
        tokens = tokenize(text)
        if not tokens:
            log(f"  reference: no phonemes for {text!r}")
            clips.append(np.zeros(0, np.float32))
            continue
        clips.append(reference(tokens, style_for(table, len(tokens))))
    return clips


def transcribe(judge: Transcriber, clips: list[np.ndarray]) -> list[str]:
    return [judge(clip, SAMPLE_RATE) if len(clip) else "" for clip in clips]


def by_set(sets: dict[str, list[str]], values: list):
    """(set name, its sentences, their values) for ``values`` that follow the sentences of ``sets`` in order."""
    k = 0
    for name, sentences in sets.items():
        yield name, sentences, values[k:k + len(sentences)]
        k += len(sentences)


def score(results: Results, system: str, voice: str, sets: dict[str, list[str]], heard: list[str]) -> None:
    """Store WER per set and per sentence; ``heard`` follows the sentences of ``sets`` in order."""
    for name, sentences, hypotheses in by_set(sets, heard):
        results.wer[system].setdefault(voice, {})[name] = corpus_word_error_rate(sentences, hypotheses)
        results.transcripts[system].setdefault(voice, {})[name] = [
            {"text": t, "heard": h, "wer": round(word_error_rate(t, h), 4)} for t, h in zip(sentences, hypotheses)
        ]


def rate(results: Results, system: str, voice: str, sets: dict[str, list[str]], clips: list[np.ndarray],
         dnsmos) -> None:
    """DNSMOS means per set; ``clips`` follow the sentences of ``sets`` in order (an empty clip is left out)."""
    for name, _, group in by_set(sets, clips):
        mean = dnsmos.mean([c for c in group if len(c)], SAMPLE_RATE)
        results.dnsmos[system].setdefault(voice, {})[name] = {
            "overall": round(mean.overall, 4), "signal": round(mean.signal, 4), "background": round(mean.background, 4)}


def run_system(results: Results, system: str, voice: str, render, judge: Transcriber,
               sets: dict[str, list[str]], dnsmos=None) -> None:
    """Render every sentence of ``sets`` with ``render(sentences) -> clips``, transcribe, score, time (and rate
    with DNSMOS if ``dnsmos``)."""
    sentences = [s for group in sets.values() for s in group]
    timing = results.timing[system]
    t0 = time.perf_counter()
    clips = render(sentences)
    t1 = time.perf_counter()
    heard = transcribe(judge, clips)
    t2 = time.perf_counter()
    timing.synth_s += t1 - t0
    timing.asr_s += t2 - t1
    timing.audio_s += sum(len(c) for c in clips) / SAMPLE_RATE
    score(results, system, voice, sets, heard)
    if dnsmos is not None:
        rate(results, system, voice, sets, clips, dnsmos)
    summary = ", ".join(f"{name} {results.wer[system][voice][name]:.1%}" for name in sets)
    if dnsmos is not None:
        summary += "; DNSMOS overall " + ", ".join(
            f"{name} {results.dnsmos[system][voice][name]['overall']:.2f}" for name in sets)
    log(f"  {system:9s} {voice}: {len(clips)} clips in {t1 - t0:.1f} s, transcribed in {t2 - t1:.1f} s; {summary}")


def means(results: Results, voices: list[str], set_names: list[str]) -> dict:
    """Mean WER over voices: ``[system][set]``."""
    nan = float("nan")
    return {system: {name: float(np.mean([results.wer[system].get(v, {}).get(name, nan) for v in voices]))
                     for name in set_names} for system in SYSTEMS}


def dnsmos_means(results: Results, voices: list[str], name: str, score: str = "overall") -> dict[str, float]:
    """Mean over voices of one DNSMOS score of set ``name``, per system that has it."""
    return {system: float(np.mean([results.dnsmos[system][v][name][score] for v in voices]))
            for system in SYSTEMS if all(name in results.dnsmos[system].get(v, {}) for v in voices)}


def table(results: Results, voices: list[str], set_names: list[str]) -> str:
    """WER per voice and set for both systems, the mean over voices, and voicegen - reference in points."""
    mean = means(results, voices, set_names)
    rows = [f"{'voice':14s} {'set':12s} {'voicegen':>9s} {'reference':>10s} {'diff (pts)':>11s}"]
    for voice in [*voices, "mean"]:
        for name in set_names:
            if voice == "mean":
                ours, ref = mean["voicegen"][name], mean["reference"][name]
            else:
                ours, ref = (results.wer[system].get(voice, {}).get(name, float("nan")) for system in SYSTEMS)
            rows.append(f"{voice:14s} {name:12s} {ours:9.1%} {ref:10.1%} {100 * (ours - ref):+11.1f}")
    if any(results.dnsmos[system] for system in SYSTEMS):
        rows.append("DNSMOS overall (mean over voices): " + "; ".join(
            f"{name}: " + ", ".join(f"{system} {mos:.2f}" for system, mos in dnsmos_means(results, voices, name).items())
            for name in set_names))
    for system in SYSTEMS:
        t = results.timing[system]
        rows.append(f"{system}: synthesis {t.synth_s:.1f} s for {t.audio_s:.1f} s of audio "
                    f"(RTF {t.synth_s / max(t.audio_s, 1e-9):.3f}), transcription {t.asr_s:.1f} s")
    return "\n".join(rows)


def report(results: Results, voices: list[str], sets: dict[str, list[str]], threads: int, alphabet: str) -> dict:
    """Everything worth keeping from a run, JSON-ready."""
    mean = means(results, voices, list(sets))
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count()},
        "torch": torch.__version__,
        "threads": threads,
        "alphabet": alphabet,
        "command": shlex.join(["python", *sys.argv]),
        "sets": {name: len(sentences) for name, sentences in sets.items()},
        "held_out": {name: heldout.describe(sentences) for name, sentences in sets.items()
                     if isinstance(SETS[name], str)},
        "voices": voices,
        "wer": results.wer,
        "mean": mean,
        "diff": {name: mean["voicegen"][name] - mean["reference"][name] for name in sets},
        "dnsmos": results.dnsmos,
        "dnsmos_mean": {name: {score: dnsmos_means(results, voices, name, score)
                               for score in ("overall", "signal", "background")}
                        for name in sets if any(results.dnsmos[system] for system in SYSTEMS)},
        "timing": {system: vars(t) for system, t in results.timing.items()},
        "transcripts": results.transcripts,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="sentences per set (default: all)")
    parser.add_argument("--voices", default=None, help="comma-separated voice names (default: all built-in)")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS),
                        help=f"comma-separated sets from {', '.join(SETS)} (default: {','.join(DEFAULT_SETS)})")
    parser.add_argument("--dnsmos", action="store_true", help="also score every clip with DNSMOS P.835")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default: benchmarks/results/intelligibility-<date>.json)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch, onnxruntime and Whisper")
    parser.add_argument("--alphabet", choices=ALPHABETS, default=DEFAULT_ALPHABET,
                        help=f"voicegen's phoneme alphabet (default: {DEFAULT_ALPHABET}, the frontend's default)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(SYSTEMS)}")
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    if not args.systems or set(args.systems) - set(SYSTEMS):
        parser.error(f"--systems takes {', '.join(SYSTEMS)}")
    args.sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in args.sets if s not in SETS]
    if unknown or not args.sets:
        parser.error(f"unknown sets {unknown}; choose from {', '.join(SETS)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    sets = read_sets(args.sets, args.limit)

    log(f"loading voicegen, the ONNX reference and Whisper tiny.en ({threads} threads)")
    engine = Engine(device="cpu", alphabet=args.alphabet)
    voices = args.voices.split(",") if args.voices else engine.voices
    unknown = [v for v in voices if v not in engine.voices]
    if unknown:
        raise SystemExit(f"unknown voices {unknown}; the built-in voices are {', '.join(engine.voices)}")
    tables = {name: table.numpy() for name, table in builtin_voices().items()}
    reference = OnnxReference(threads=threads)
    tokenize = EspeakTokens()
    judge = Transcriber(cpu_threads=threads)
    dnsmos = None
    if args.dnsmos:
        from voicegen.eval.dnsmos import Dnsmos

        dnsmos = Dnsmos(threads=threads)

    log("warming up both systems (untimed)")
    render_voicegen(engine, voices[0], ["Warming up."])
    render_reference(reference, tables[voices[0]], tokenize, ["Warming up."])

    results = Results()
    for i, voice in enumerate(voices, 1):
        log(f"[{i}/{len(voices)}] {voice}: {sum(map(len, sets.values()))} sentences")
        if "voicegen" in args.systems:
            run_system(results, "voicegen", voice, partial(render_voicegen, engine, voice), judge, sets, dnsmos)
        if "reference" in args.systems:
            run_system(results, "reference", voice, partial(render_reference, reference, tables[voice], tokenize),
                       judge, sets, dnsmos)

    print(table(results, voices, args.sets))
    out = args.out or HERE / "results" / f"intelligibility-{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report(results, voices, sets, threads, args.alphabet), indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
