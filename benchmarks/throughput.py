"""Throughput benchmark: how many seconds of audio voicegen renders per wall-clock second, in several modes,
against the onnxruntime reference, on the same corpus in the same run.

Modes (each a fresh engine; CUDA-only modes are skipped on the CPU). Compiled code is cached on disk
(Performance, README): a mode's warm-up is cold the first time and from the cache after that; the JSON records
which (compile_cache_hits/misses).
  onnx-b1          onnxruntime on the int8 file, one sentence at a time (its only mode; CPU)
  b1-eager         our network, eager float32, one sentence at a time: the Kokoro-like baseline
  batched-eager    the engine's bucketed batches, eager float32, direct convolutions (`Performance()`)
  batched-fft      the same with the vocoder's long convolutions through the FFT (`fft_convs`): the CPU default
  batched-compiled the same, frame phase under torch.compile
  batched-bf16     eager, bfloat16 convolutions (CPU: needs AMX/AVX512-BF16)
  batched-compiled-bf16   compiled and bfloat16
  cuda-bf16-graphs (CUDA) bfloat16, CUDA graphs per bucket
  cuda-compiled-bf16-graphs (CUDA) compile + bfloat16 + CUDA graphs
  <mode>-overlap   any batched mode with its turns pipelined by token batch (`Renderer.overlap`; on CUDA the token
                   phase on a second stream); not in the default list: an A/B, e.g. --modes
                   cuda-compiled-bf16-graphs,cuda-compiled-bf16-graphs-overlap

The corpus (paragraphs from benchmarks/data plus the multi-speaker episode in examples/, repeated with
different voices) is phonemized once up front; throughput covers the model (token phase, alignment, frame
phase) and excludes the frontend, which is timed on its own. The 1-minute two-speaker script latency is end to
end: text in, mixed audio out, frontend included. Warm-up (`engine.warmup()`: compile, graph capture,
then a few chunks) is reported separately. The one-minute script (median of three runs) is broken down into
stages (frontend, token phase + alignment, frame phase, host copies, mixing and the rest; each stage the median of
its three values, every value kept in the JSON's `script_stage_runs_s`). On CUDA the stage counters synchronize
the device at every stage boundary, which keeps frame batches from overlapping, so there the script's latency is
the median of three more renders without them (`script_latency_s`; the profiled median is kept as
`script_latency_profiled_s`); on the CPU the counters wait for nothing and one set of runs gives both. Time to
first audio is the median of five streamed sentences. The script's latency with the phoneme cache emptied before
each render (`script_latency_new_text_s`: a script the engine has not read, as a user's is; median of three on CUDA,
one render on the CPU) adds espeak-ng's time for every sentence. The corpus is rendered once on the CPU and three
times by CUDA's batched modes, where one pass takes half a second and the first pass after warm-up ran 13-29%
slower than later ones (H200, seventeenth session; batch-1 eager: once): `x_realtime` is from the median pass,
every pass's seconds in `corpus_runs_s`. A pass records its token batches and the token phase's host time
(`corpus_token_phase_s`), and one more pass with synchronized stage counters its stages
(`corpus_stages_s`). Compiled modes also time their warm-up again in a fresh process that loads this run's compiled
graphs from the cache (`warmup_cached`). Quality per mode: log-mel distance to the float32
eager rendering of the same chunks, Whisper tiny.en WER over 40 chunks (--asr N) against their text, and DNSMOS
overall (voicegen.eval.dnsmos) over the same chunks. `--ab overhead-256,overlap,...`: in batched modes, the corpus
and the script again with each variant of the warm engine, alternating with it as it is (`ab` in the JSON): A/B runs
that need no second warm-up (on a GPU, about a second a round instead of a fresh engine's ~40 s).

Usage:
  python benchmarks/throughput.py                       # all modes available here, >= 10 minutes of audio
  python benchmarks/throughput.py --minutes 3 --modes b1-eager,batched-compiled
Writes benchmarks/results/throughput-<device>-<date>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))  # after the checkout: benchmarks/switches.py

from switches import SWITCHES, set_switch  # noqa: E402
from voicegen import Engine, Performance, Request  # noqa: E402
from voicegen.constants import SAMPLE_RATE  # noqa: E402
from voicegen.podcast import Script  # noqa: E402
from voicegen.podcast.render import render_script  # noqa: E402
from voicegen.renderer import Item  # noqa: E402
from voicegen.text.phonemize import espeak_words  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
WORDS_PER_SECOND = 2.6  # rough speaking rate, to size the corpus before rendering it
CPU_MODES = ["onnx-b1", "b1-eager", "batched-eager", "batched-fft", "batched-bf16", "batched-compiled", "batched-compiled-bf16"]
CUDA_MODES = ["b1-eager", "batched-eager", "batched-bf16", "cuda-bf16-graphs", "cuda-compiled-bf16-graphs"]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def build_corpus(minutes: float) -> list[Request]:
    """Paragraphs of 4 sentences and the episode's turns, cycling voices, until ~`minutes` of speech."""
    sentences = (DATA / "sentences_plain.txt").read_text().splitlines() + (DATA / "sentences_numbers.txt").read_text().splitlines()
    paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    episode = Script.parse((ROOT / "examples" / "episode.txt").read_text())
    cast = episode.voices(VOICES)
    pieces = [(p, VOICES[i % len(VOICES)]) for i, p in enumerate(paragraphs)]
    pieces += [(t.spoken_text, cast[t.speaker]) for t in episode.turns]
    requests, words, k = [], 0, 0
    while words < minutes * 60 * WORDS_PER_SECOND:
        text, voice = pieces[k % len(pieces)]
        if k >= len(pieces):  # second pass: another voice, so items differ
            voice = VOICES[(VOICES.index(voice) + k // len(pieces)) % len(VOICES)]
        requests.append(Request(text, voice=voice, seed=k))
        words += len(text.split())
        k += 1
    return requests


def one_minute_script() -> Script:
    """The first turns of the example episode, about one minute of two-speaker speech."""
    episode = Script.parse((ROOT / "examples" / "episode.txt").read_text())
    turns, words = [], 0
    for turn in episode.turns:
        if turn.speaker not in ("Host", "Mika"):
            continue
        turns.append(turn)
        words += len(turn.text.split())
        if words >= 60 * WORDS_PER_SECOND:
            break
    return Script(tuple(turns), {k: v for k, v in episode.cast.items() if k in ("Host", "Mika")})


def chunks_of(engine: Engine, requests: list[Request]) -> list[tuple[Item, str]]:
    """(renderer item, chunk text) per chunk: the engine's public planning step (text -> chunks -> items)."""
    out = []
    for r in requests:
        plan = engine.plan(r)
        out.extend((item, chunk.text) for item, chunk in zip(plan.items, plan.chunks))
    return out


def engine_for(mode: str, device: str) -> Engine:
    performance = Performance(
        compile="compiled" in mode,
        dtype=torch.bfloat16 if "bf16" in mode else None,
        cuda_graphs="graphs" in mode,
        fft_convs="fft" in mode,
    )
    engine = Engine(device=device, performance=performance)
    engine.renderer.overlap = mode.endswith("-overlap")
    return engine


CACHED_WARMUP = r"""
import json, sys, time
sys.path[:0] = [{root!r}, {bench!r}]
from throughput import engine_for
t0 = time.perf_counter()
engine = engine_for({mode!r}, {device!r})
load = time.perf_counter() - t0
r = engine.warmup()
print(json.dumps({{"warmup_s": r.seconds, "engine_load_s": load, "graphs_loaded": r.graphs_loaded,
    "graphs_compiled": r.graphs_compiled, "graph_load_s": r.load_s, "graph_compile_s": r.compile_s,
    "graphs_captured": r.graphs_captured, "shapes_run": len(r.shapes_run), "load_failures": r.load_failures}}))
"""


def cached_warmup(mode: str, device: str) -> dict:
    """The mode's warm-up in a fresh process that finds this run's compiled graphs on disk (the same compile
    cache): what a restarted server pays. -> its WarmupReport's figures (warmup_s; graphs loaded / compiled)."""
    import subprocess

    code = CACHED_WARMUP.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), mode=mode, device=device)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_s": time.perf_counter() - t0}


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak so far (Linux: KiB)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def render_all(engine: Engine, items, batch_one: bool) -> list[np.ndarray]:
    """Render every chunk (one at a time, or all in one call for the engine to batch) -> audio per chunk."""
    fresh = [Item(it.tokens, it.style, it.speed, it.seed) for it, _ in items]
    if batch_one:
        return [engine.renderer.render([it])[0].audio for it in fresh]
    return [it.audio for it in engine.renderer.render(fresh)]


def counted_corpus(engine: Engine, items, batch_one: bool, device: str) -> tuple[list[np.ndarray], float, dict]:
    """Render the corpus as `render_all`, the device synchronized at the end -> (audio per chunk, wall seconds, the
    renderer's counters over the pass: token batches, the token phase's seconds (its host time: the durations and
    frame counts it reads back wait for the device, and the frame phase starts only after it unless
    `Renderer.overlap`), frame batches, padded and valid frames)."""
    stats = engine.stats
    names = ("token_batches", "token_s", "frame_batches", "padded_frames", "valid_frames")
    before = [getattr(stats, n) for n in names]
    t0 = time.perf_counter()
    audio = render_all(engine, items, batch_one)
    sync(device)
    wall = time.perf_counter() - t0
    return audio, wall, {n: getattr(stats, n) - b for n, b in zip(names, before)}


def profiled_stages(engine: Engine, call):
    """call() with the renderer's stage counters synchronizing the device at every stage boundary
    (`Renderer.profile`) -> (its result, seconds it spent per renderer stage: token phase + alignment, frame phase,
    host copies)."""
    stats = engine.renderer.stats
    before = (stats.token_s, stats.frame_s, stats.copy_s)
    engine.renderer.profile = True
    try:
        out = call()
    finally:
        engine.renderer.profile = False
    token, frame, copy = (now - was for now, was in zip((stats.token_s, stats.frame_s, stats.copy_s), before))
    return out, {"token_phase_and_alignment": token, "frame_phase": frame, "host_copies": copy}


def corpus_stages(engine: Engine, items, device: str) -> dict:
    """One more pass over the corpus with the renderer's stage counters synchronizing the device at every stage
    boundary (`profiled_stages`, as the script's stages) -> seconds per stage: token phase + alignment, frame
    phase, host copies and the rest, and the pass's wall time. Slower than an unprofiled pass on CUDA (no frame
    batch overlaps the next one's launch): shares, not a throughput."""
    def render() -> float:
        t0 = time.perf_counter()
        render_all(engine, items, False)
        sync(device)
        return time.perf_counter() - t0

    wall, stages = profiled_stages(engine, render)
    return stages | {"rest": wall - sum(stages.values()), "wall": wall}


def seconds(audio: list[np.ndarray]) -> float:
    return sum(len(a) for a in audio) / SAMPLE_RATE


def distance_to(reference: list[np.ndarray] | None, audio: list[np.ndarray], every: int = 5) -> float | None:
    """Mean log-mel distance (nats) of every `every`-th chunk to the float32 eager rendering of the same chunk
    (same seeds, so the same source noise)."""
    if reference is None:
        return None
    from voicegen.eval.spectral import log_mel_distance

    return float(np.mean([log_mel_distance(r, a) for r, a in list(zip(reference, audio))[::every]]))


def asr_check(items, audio: list[np.ndarray], count: int, judge) -> float | None:
    """Whisper tiny.en word error rate over `count` chunks spread evenly through the corpus (the same chunks in
    every mode), scored against each chunk's text."""
    if not count or judge is None:
        return None
    from voicegen.eval.wer import corpus_word_error_rate

    picks = np.linspace(0, len(items) - 1, min(count, len(items))).round().astype(int)
    hypotheses = [judge.transcribe(audio[i], SAMPLE_RATE) for i in picks]
    return corpus_word_error_rate([items[i][1] for i in picks], hypotheses)


def timed_script(engine: Engine, script: Script):
    """Render the one-minute script end to end, the device synchronized at the end -> (episode, seconds)."""
    t0 = time.perf_counter()
    episode = render_script(engine, script, seed=0)
    sync(str(engine.device.type))
    return episode, time.perf_counter() - t0


def script_stages(engine: Engine, script: Script):
    """Render the one-minute script end to end -> (episode, seconds, seconds per stage): frontend (the engine's
    planning step), token phase + alignment, frame phase, host copies (from the renderer's counters, with the
    device synchronized at stage boundaries), mixing (the mixer's calls: joining each turn's pieces, adding turns and
    silences, and closing: loudness, limiter, output) and the rest (assembly of timings, the renderer's memory
    trims on the CPU, Python between the stages)."""
    from voicegen.podcast import mix, render

    plan = engine.plan
    spent = {"frontend": 0.0, "mixing": 0.0}

    def timed(fn, stage):
        def call(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += time.perf_counter() - t
        return call

    patched = [(engine, "plan", timed(plan, "frontend")), (render, "join_pieces", timed(mix.join_pieces, "mixing"))]
    patched += [(mix.EpisodeWriter, name, timed(getattr(mix.EpisodeWriter, name), "mixing"))
                for name in ("add_turn", "add_silence", "close")]
    saved = [(obj, name, obj.__dict__.get(name)) for obj, name, _ in patched]
    for obj, name, fn in patched:
        setattr(obj, name, fn)
    try:
        (episode, total), renderer = profiled_stages(engine, lambda: timed_script(engine, script))
    finally:
        for obj, name, original in saved:
            if original is None:
                delattr(obj, name)
            else:
                setattr(obj, name, original)
    stages = {"frontend": spent["frontend"], **renderer, "mixing": spent["mixing"]}
    stages["rest"] = total - sum(stages.values())
    stages["mixing_and_rest"] = stages["mixing"] + stages["rest"]  # the one figure of earlier runs
    return episode, total, stages


def dnsmos_check(items, audio: list[np.ndarray], count: int, judge) -> float | None:
    """DNSMOS overall (voicegen.eval.dnsmos), mean over the same chunks as the Whisper check."""
    if not count or judge is None:
        return None
    picks = np.linspace(0, len(items) - 1, min(count, len(items))).round().astype(int)
    return judge.mean([audio[i] for i in picks], SAMPLE_RATE).overall


def run_onnx(items, threads: int) -> dict:
    from voicegen.eval.reference import OnnxReference

    ref = OnnxReference(threads=threads)
    first = items[0][0]
    ref(first.tokens, first.style.numpy(), first.speed)  # warm-up
    start = time.perf_counter()
    audio_s = sum(len(ref(it.tokens, it.style.numpy(), it.speed)) for it, _ in items) / SAMPLE_RATE
    wall = time.perf_counter() - start
    return {"audio_s": audio_s, "wall_s": wall, "x_realtime": audio_s / wall, "warmup_s": 0.0, "batch": 1}, None


def variant(engine: Engine, name: str):
    """An A/B variant of a warm engine that needs no compile or capture -> a function that applies it and returns
    one that undoes it. 'default'; 'overhead-N': the batch planner's per-batch cost (`voicegen.batching.
    STATIC_BATCH_OVERHEAD`) at N frames (static shapes only change how items are grouped: the same set of shapes);
    'overlap': `Renderer.overlap` (a turn pipelined by token batch, on CUDA the token phase on a second stream);
    'buckets-N': N frame buckets per octave (`voicegen.batching.frame_buckets`; with CUDA graphs the new shapes are
    captured on first use, in the untimed pass); 'tokens-N': a token budget of N padded tokens per token batch
    (`Performance.max_batch_tokens`: fewer, larger token batches; the one-minute script's one batch of 15 items took
    51-69 ms on an H200, mostly serial LSTM steps: how a batch's time grows with its rows is what this measures);
    any module switch of benchmarks/switches.py that needs no compile
    (exact-padding, bucket-padding, one-way, one-way-fp16, unpacked, fp32-albert, ...); 'a+b': both. An unknown
    name raises ValueError here, before anything is applied (`engine` is read only by what is applied: None checks
    a name)."""
    from voicegen import batching

    number = name.partition("-")[2]
    if "+" in name:  # several at once: applied in order, undone in reverse
        parts = [variant(engine, part) for part in name.split("+")]

        def apply():
            undos = [part() for part in parts]
            return lambda: [undo() for undo in reversed(undos)] and None
        return apply
    if name == "default":
        return lambda: (lambda: None)
    if name.startswith("overhead-") and number.isdigit():
        def apply():
            saved, batching.STATIC_BATCH_OVERHEAD = batching.STATIC_BATCH_OVERHEAD, int(number)
            return lambda: setattr(batching, "STATIC_BATCH_OVERHEAD", saved)
        return apply
    if name == "overlap":
        def apply():
            saved, engine.renderer.overlap = engine.renderer.overlap, True
            return lambda: setattr(engine.renderer, "overlap", saved)
        return apply
    if name in SWITCHES and name != "channels-last":  # channels-last changes the compiled graph: a recompile
        return lambda: set_switch(name, engine.device.type)
    if name.startswith("tokens-") and number.isdigit():
        def apply():
            saved = engine.renderer.performance
            engine.renderer.performance = replace(saved, max_batch_tokens=int(number))
            return lambda: setattr(engine.renderer, "performance", saved)
        return apply
    if name.startswith("buckets-") and number.isdigit():
        def apply():
            saved = engine.renderer.frame_buckets
            engine.renderer.frame_buckets = batching.frame_buckets(per_octave=int(number))
            return lambda: setattr(engine.renderer, "frame_buckets", saved)
        return apply
    switches = ", ".join(n for n in SWITCHES if n != "channels-last")
    raise ValueError(f"unknown A/B variant {name!r}: default, overhead-N, overlap, buckets-N, tokens-N, {switches}")


def first_audio(engine: Engine, device: str, k: int):
    """Time to the first audio of a streamed two-sentence text (take k: the same text for the same k) -> (seconds,
    the first chunk's Audio)."""
    t0 = time.perf_counter()
    first = next(engine.stream(f"Time to first audio is what a listener waits for, take {k + 1}. "
                               "The rest follows while they listen.", seed=k))
    sync(device)
    return time.perf_counter() - t0, first


def variants_ab(engine: Engine, items, script: Script, device: str, names, rounds: int = 3, progress=None) -> dict:
    """In-process A/B on the warm engine: the corpus and the one-minute script rendered with the engine as it is
    ('default') and with each variant of `names` (`variant`), alternating, `rounds` rounds after one untimed pass
    each (what a variant sets up on first use: cuDNN plans for new token shapes, a second stream, CUDA graphs of new
    frame buckets). Nothing is compiled again, so on a warm GPU a round takes about a second per variant. -> per
    variant: x real time (the corpus's median round), frame batches and padding of its last corpus pass, the
    script's latency and the time to first audio (`first_audio`, take r in round r; medians), every round's seconds,
    the untimed pass's seconds. `progress(figures so far)` after every round, so that a run cut short (a variant
    whose first pass takes long) keeps the rounds it made."""
    names = ["default"] + [n for n in names if n != "default"]
    applies = {n: variant(engine, n) for n in names}  # unknown names fail here, before any rendering
    runs = {n: {"corpus_s": [], "corpus_token_phase_s": [], "script_s": [], "first_audio_s": []} for n in names}
    failed = {}  # a variant that fails (one never run on this device) must not cost the mode's own figures
    audio_s = None  # the corpus's seconds of audio, from the first timed pass

    def figures() -> dict:
        return {name: {"error": failed[name]} if name in failed else
                r | ({"x_realtime": audio_s / float(np.median(r["corpus_s"])),
                      "script_latency_s": float(np.median(r["script_s"])),
                      "first_audio_median_s": float(np.median(r["first_audio_s"]))} if r["corpus_s"] else {})
                for name, r in runs.items()}
    for r in range(rounds + 1):  # round 0: the untimed pass
        for name in names:
            if name in failed:
                continue
            undo = lambda: None  # noqa: E731
            try:
                undo = applies[name]()
                if not r:
                    t0 = time.perf_counter()
                    render_all(engine, items, False)
                    timed_script(engine, script)  # synchronizes the device at its end
                    first_audio(engine, device, 0)
                    runs[name]["untimed_pass_s"] = time.perf_counter() - t0
                    continue
                audio, wall, counts = counted_corpus(engine, items, False, device)
                runs[name]["corpus_s"].append(wall)
                runs[name]["corpus_token_phase_s"].append(counts["token_s"])
                audio_s = seconds(audio)
                runs[name]["frame_batches"] = counts["frame_batches"]
                runs[name]["token_batches"] = counts["token_batches"]
                runs[name]["padding_overhead"] = counts["padded_frames"] / max(counts["valid_frames"], 1) - 1
                runs[name]["script_s"].append(timed_script(engine, script)[1])
                runs[name]["first_audio_s"].append(first_audio(engine, device, r)[0])
            except Exception as exc:
                if name == "default":
                    raise
                failed[name] = f"{type(exc).__name__}: {exc}"
                log(f"A/B variant {name} failed: {failed[name]}")
            finally:
                undo()
        if progress is not None and r:
            progress(figures())
    return figures()


def run_mode(mode: str, device: str, items, script: Script, reference, judge=None, asr_chunks: int = 0,
             mos_judge=None, cached: bool = True, ab=(), checkpoint=None,
             ab_rounds: int = 3) -> tuple[dict, list[np.ndarray]]:
    """One mode measured (see the module docstring) -> (its figures, its audio per chunk). With `ab`, the variants'
    A/B runs come last, after `checkpoint(figures)` has saved the rest: a run cut short during them keeps those."""
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    engine = engine_for(mode, device)
    load_s = time.perf_counter() - t0
    batch_one = mode.startswith("b1")
    # warm-up: the engine's own (compile with symbolic sizes; capture every bucket shape for CUDA graphs), then a
    # few chunks through the whole path; reported apart from the timed run, with the compile cache's traffic
    t0 = time.perf_counter()
    report = engine.warmup()
    render_all(engine, items[:3], batch_one)
    sync(device)
    warmup_s = time.perf_counter() - t0
    log(f"warm-up: {report}")
    repeats = 3 if device == "cuda" and not batch_one else 1
    passes = [counted_corpus(engine, items, batch_one, device) for _ in range(repeats)]
    audio, wall, counts = sorted(passes, key=lambda p: p[1])[len(passes) // 2]  # the median pass
    audio_s = seconds(audio)
    render_script(engine, script, seed=0)  # warm the script path
    runs = sorted((script_stages(engine, script) for _ in range(3)), key=lambda run: run[1])
    episode, script_latency, _ = runs[1]  # the median of three
    profiled_latency, latencies = script_latency, [run[1] for run in runs]
    if device == "cuda":  # as a user sees it: no synchronization at stage boundaries (see the docstring)
        latencies = sorted(timed_script(engine, script)[1] for _ in range(3))
        script_latency = latencies[1]
    # a script the engine has not read before: espeak-ng runs for every sentence (above, the phoneme cache holds them)
    new_text = []
    for _ in range(3 if device == "cuda" else 1):
        espeak_words.cache_clear()
        new_text.append(timed_script(engine, script)[1])
    # each stage's median over the three renders (a stage of a few ms is noise within one render)
    stages = {name: float(np.median([run[2][name] for run in runs])) for name in runs[0][2]}
    stage_runs = {name: [run[2][name] for run in runs] for name in runs[0][2]}
    firsts = [first_audio(engine, device, k) for k in range(5)]
    first_times, first = [t for t, _ in firsts], firsts[-1][1]
    first_audio_s = float(np.median(first_times))
    result = {
        "audio_s": audio_s,
        "wall_s": wall,
        "corpus_runs_s": [p[1] for p in passes],
        "x_realtime": audio_s / wall,
        "log_mel_distance_to_fp32": distance_to(reference, audio),
        "asr_wer": asr_check(items, audio, asr_chunks, judge),
        "dnsmos_ovrl": dnsmos_check(items, audio, asr_chunks, mos_judge),
        "load_s": load_s,
        "warmup_s": warmup_s,
        "warmup": {"shapes": len(report.shapes), "graphs_captured": report.graphs_captured,
                   "graphs_loaded": report.graphs_loaded, "graphs_compiled": report.graphs_compiled,
                   "graph_compile_s": report.compile_s, "engine_warmup_s": report.seconds,
                   "compile_cache_hits": report.cache_hits, "compile_cache_misses": report.cache_misses},
        "frame_batches": counts["frame_batches"],
        "padding_overhead": counts["padded_frames"] / max(counts["valid_frames"], 1) - 1,
        "token_batches": counts["token_batches"],
        "corpus_token_phase_s": counts["token_s"],
        "corpus_stages_s": None if batch_one else corpus_stages(engine, items, device),
        "script_audio_s": episode.duration,
        "script_latency_s": script_latency,
        "script_stages_s": stages,
        "script_stage_runs_s": stage_runs,
        "script_latencies_s": latencies,
        "script_latency_profiled_s": profiled_latency,
        "script_latency_new_text_s": float(np.median(new_text)),
        "first_audio_s": first_audio_s,
        "first_audio_runs_s": first_times,
        "first_chunk_audio_s": first.duration,
        "peak_memory_mb": peak_memory_mb(device),  # before the A/B runs, whose variants may capture more CUDA graphs
        "warmup_cached": cached_warmup(mode, device) if "compiled" in mode and cached else None,
        "ab": None,
    }
    if ab and not batch_one:
        if checkpoint is not None:
            checkpoint(result)
        progress = None if checkpoint is None else (lambda partial: checkpoint(result | {"ab": partial}))
        result["ab"] = variants_ab(engine, items, script, device, ab, rounds=ab_rounds, progress=progress)
        log(f"A/B: {json.dumps(result['ab'])}")
    return result, audio


def save(args, out: Path, requests, items, frontend_s: float, results: dict) -> dict:
    """Write the JSON report of the modes measured so far (each with its ratio to b1-eager of this run)."""
    baseline = results.get("b1-eager")
    for r in results.values():
        r["vs_b1_eager"] = r["x_realtime"] / baseline["x_realtime"] if baseline else None
    device = (torch.cuda.get_device_name() if args.device == "cuda"
              else f"CPU x{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if args.device == "cuda" else None,
        "corpus": {"texts": len(requests), "chunks": len(items), "audio_s": next(iter(results.values()))["audio_s"] if results else 0},
        "frontend_s": frontend_s,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--minutes", type=float, default=10.0, help="approximate minutes of audio in the corpus")
    parser.add_argument("--modes", help="comma-separated modes (default: all for the device)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--asr", type=int, default=40, metavar="N",
                        help="Whisper tiny.en WER over N chunks of each mode's output (0: skip; default 40)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/throughput-<device>-<date>.json)")
    parser.add_argument("--no-cached-warmup", action="store_true",
                        help="skip the compiled modes' second warm-up in a fresh process (an A/B that needs no warm-up "
                             "figure: saves ~40 s per compiled mode on a GPU)")
    parser.add_argument("--ab", default="", metavar="VARIANTS",
                        help="batched modes: also render the corpus and the script with each of these variants of the "
                             "warm engine, alternating with it as it is, --ab-rounds rounds (JSON: `ab`): overhead-N "
                             "(the batch planner's per-batch cost, static shapes), overlap (Renderer.overlap), "
                             "buckets-N (N frame buckets per octave, default 2), tokens-N (the token budget), a module "
                             "switch of benchmarks/switches.py (exact-padding, bucket-padding, one-way-fp16, ...), a+b "
                             "(both); an untimed pass first, nothing compiled again")
    parser.add_argument("--ab-rounds", type=int, default=3, metavar="N",
                        help="timed rounds of the --ab variants after their untimed pass (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ab = [v.strip() for v in args.ab.split(",") if v.strip()]
    for name in ab:  # before any rendering
        try:
            variant(None, name)
        except ValueError as exc:
            parser.error(str(exc))
    modes = args.modes.split(",") if args.modes else (CUDA_MODES if args.device == "cuda" else CPU_MODES)
    for mode in modes:  # engine_for reads a mode by its parts: a misspelt one would run some other engine
        if mode.removesuffix("-overlap") not in CPU_MODES + CUDA_MODES:
            parser.error(f"unknown mode {mode!r}: one of {', '.join(dict.fromkeys(CPU_MODES + CUDA_MODES))} "
                         "(a batched one may end in -overlap)")
    if args.device == "cpu" and "batched-compiled-bf16" in modes and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        modes.remove("batched-compiled-bf16")

    requests = build_corpus(args.minutes)
    frontend_engine = Engine(device="cpu")
    t0 = time.perf_counter()
    items = chunks_of(frontend_engine, requests)
    frontend_s = time.perf_counter() - t0
    del frontend_engine
    script = one_minute_script()
    log(f"corpus: {len(requests)} texts, {len(items)} chunks, frontend {frontend_s:.1f} s")

    judge = None
    if args.asr:
        try:
            from voicegen.eval.asr import Transcriber

            judge = Transcriber(cpu_threads=args.threads)
        except (ImportError, OSError, RuntimeError) as exc:  # e.g. a GPU box without the judge's packages
            log(f"ASR check skipped: {exc}")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"throughput-{args.device}-{datetime.date.today()}.json"
    mos_judge = None
    if args.asr:
        try:
            from voicegen.eval.dnsmos import Dnsmos

            mos_judge = Dnsmos(threads=args.threads)
        except (ImportError, OSError, RuntimeError) as exc:
            log(f"DNSMOS check skipped: {exc}")
    results, reference = {}, None
    for mode in modes:
        log(f"--- {mode}")
        if mode == "onnx-b1":
            results[mode], _ = run_onnx(items, args.threads)
        else:
            results[mode], audio = run_mode(mode, args.device, items, script, reference, judge, args.asr, mos_judge,
                                            cached=not args.no_cached_warmup, ab=ab, ab_rounds=args.ab_rounds,
                                            checkpoint=lambda r: save(args, out, requests, items, frontend_s,
                                                                      results | {mode: r}))
            if mode == "b1-eager":
                reference = audio  # float32 eager: what the other modes are compared with
        log(json.dumps(results[mode], indent=None))
        report = save(args, out, requests, items, frontend_s, results)  # after every mode: a run cut short keeps what it measured
    print(f"\n{'mode':26} {'x realtime':>10} {'vs b1':>6} {'warm-up s':>9} {'1-min script s':>14} {'new text s':>10} {'first audio s':>13} {'peak MB':>8} {'dist':>5} {'WER':>5} {'DNSMOS':>6}")
    for mode, r in results.items():
        vs = f"{r['vs_b1_eager']:.2f}" if r["vs_b1_eager"] else "-"
        dist, wer, mos = r.get("log_mel_distance_to_fp32"), r.get("asr_wer"), r.get("dnsmos_ovrl")
        print(
            f"{mode:26} {r['x_realtime']:10.2f} {vs:>6} {r['warmup_s']:9.1f} {r.get('script_latency_s', float('nan')):14.2f} "
            f"{r.get('script_latency_new_text_s', float('nan')):10.2f} "
            f"{r.get('first_audio_s', float('nan')):13.2f} {r.get('peak_memory_mb', float('nan')):8.0f} "
            f"{'-' if dist is None else f'{dist:.3f}':>5} {'-' if wer is None else f'{wer:.3f}':>5} "
            f"{'-' if mos is None else f'{mos:.2f}':>6}"
        )
    print("\none-minute script, seconds per stage:")
    names = ["frontend", "token_phase_and_alignment", "frame_phase", "host_copies", "mixing", "rest"]
    print(f"{'mode':26} " + " ".join(f"{n[:14]:>14}" for n in names))
    for mode, r in results.items():
        if r.get("script_stages_s"):
            print(f"{mode:26} " + " ".join(f"{r['script_stages_s'][n]:14.3f}" for n in names))
    print("\ncorpus, seconds per stage (one pass with the device synchronized at each stage boundary):")
    names = ["token_phase_and_alignment", "frame_phase", "host_copies", "rest", "wall"]
    print(f"{'mode':26} {'token batches':>13} " + " ".join(f"{n[:14]:>14}" for n in names))
    for mode, r in results.items():
        if r.get("corpus_stages_s"):
            print(f"{mode:26} {r['token_batches']:13d} " + " ".join(f"{r['corpus_stages_s'][n]:14.3f}" for n in names))
    for mode, r in results.items():
        if r.get("ab"):  # the variants against 'default', the same warm engine, alternating
            base = r["ab"].get("default", {})
            print(f"\n{mode} A/B: {'variant':24} {'x realtime':>10} {'vs default':>10} {'script s':>9} {'first audio s':>13} "
                  f"{'token s':>8} {'batches':>7}")
            for name, v in r["ab"].items():
                if "error" in v or "x_realtime" not in v:
                    print(f"{'':{len(mode) + 6}}{name:24} {v.get('error', 'no timed round')}")
                    continue
                ratio = v["x_realtime"] / base["x_realtime"] if "x_realtime" in base else float("nan")
                print(f"{'':{len(mode) + 6}}{name:24} {v['x_realtime']:10.2f} {ratio:10.3f} {v['script_latency_s']:9.3f} "
                      f"{v['first_audio_median_s']:13.3f} {float(np.median(v['corpus_token_phase_s'])):8.3f} "
                      f"{v['token_batches']:>3d}/{v['frame_batches']:<3d}")
    for mode, r in results.items():
        if r.get("warmup_cached"):
            print(f"{mode}: warm-up cold {r['warmup_s']:.1f} s, cached (fresh process) {r['warmup_cached']}")
    print(f"corpus {report['corpus']['audio_s'] / 60:.1f} min of audio; frontend {frontend_s:.1f} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
