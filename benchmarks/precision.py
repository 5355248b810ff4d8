"""Where reduced precision loses the voice: a per-module ablation of the frame phase under autocast.

Every chunk's token phase and alignment run once in float32; then the frame phase (`KokoroNetwork.render`, eager,
one chunk at a time, the same seeded source noise in every variant) runs under each variant:

  fp32                      float32 (the reference)
  fp32-seed                 float32 with other noise seeds: the scale of "audibly the same" (seed to seed)
  bf16 / fp16               autocast to that dtype, as the model code runs it (its float32 regions included)
  bf16-old / fp16-old       the policy before issue 11: autocast re-enabled in the regions the model code now keeps
                            float32 (the F0/N predictor and conv_post), to compare in the same run
  bf16-fp32:FAM[,FAM...]    autocast, but float32 inside these module families (autocast disabled, inputs cast)
  fp32-bf16:FAM[,FAM...]    float32, with autocast only inside these families (isolates one family's error)
  (the same with fp16)

Families: adain_fc (the style Linear of every AdaIN), adain (AdaIN whole: fc, instance norm, affine), snake,
gen_resblocks, noise_convs, noise_res, ups, conv_post (the generator's parts), residual (the generator's residual
stream kept float32 between its blocks), decoder (the decoder's AdainResBlk1d encode/decode blocks and its F0/N
convs), f0n (the F0/N predictor in the frame phase), f0n_proj (its two 1x1 output projections), source (the
harmonic source; already float32 in the model code).

Scores per variant: log-mel distance to float32 (`voicegen.eval.spectral.log_mel_distance`, mean and max over the
chunks), DNSMOS overall (`--dnsmos`), Whisper tiny.en WER (`--asr`, for the variants named there), and the frame
phase's time, eager (variants run round-robin per chunk, so load on a shared machine hits them alike; compare
ratios to fp32 within one run only) and, with `--compiled V1,V2,..`, under torch.compile (dynamic sizes, as the
CPU engine compiles; each variant compiled and warmed up first, then timed round-robin per chunk).

Usage:
  python benchmarks/precision.py --chunks 4 --variants fp32,bf16,bf16-fp32:conv_post
  python benchmarks/precision.py --chunks 24 --ablation --dnsmos --asr fp32,bf16
Writes benchmarks/results/precision-<date>.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicegen import Engine, Request  # noqa: E402
from voicegen.constants import SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: E402
from voicegen.model.layers import AdaIN1d  # noqa: E402
from voicegen.model.vocoder import generator as generator_module  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FLOAT32_REGIONS = ("f0n", "conv_post")
"""Where the model code disables autocast since issue 11 (besides the source and the inverse STFT)."""
FAMILIES = ["adain_fc", "adain", "snake", "gen_resblocks", "noise_convs", "noise_res", "ups", "conv_post", "residual",
            "decoder", "f0n", "f0n_proj", "source"]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


@dataclass
class Chunk:
    text: str
    x: torch.Tensor  # (1, 512, F)
    asr: torch.Tensor  # (1, 512, F)
    style: torch.Tensor  # (1, 256)
    lengths: torch.Tensor  # (1,)
    noise: torch.Tensor  # (1, 600F)
    other_noise: torch.Tensor  # (1, 600F), another seed


def prepare_chunks(engine: Engine, count: int) -> list[Chunk]:
    """The first `count` chunks of the plain and number sentences, voices cycling, seed = index; token phase and
    alignment in float32."""
    sentences = (DATA / "sentences_plain.txt").read_text().splitlines() + (DATA / "sentences_numbers.txt").read_text().splitlines()
    sentences = sentences[::2] + sentences[1::2]  # plain and number sentences interleave in the first chunks
    net = engine.renderer.network
    out = []
    for k, text in enumerate(sentences):
        plan = engine.plan(Request(text, voice=VOICES[k % len(VOICES)], seed=k))
        for item, chunk in zip(plan.items, plan.chunks):
            tokens = torch.tensor([[0] + item.tokens + [0]])
            lengths = torch.tensor([len(item.tokens) + 2])
            style = item.style[None]
            with torch.inference_mode():
                phase = net.encode(tokens, lengths, style, torch.tensor([item.speed]))
                frames = net.align(phase, style)
            n = frames.x.shape[-1] * SAMPLES_PER_FRAME
            noise = torch.randn(n, generator=torch.Generator().manual_seed(item.seed))[None]
            other = torch.randn(n, generator=torch.Generator().manual_seed(item.seed + 10_000))[None]
            out.append(Chunk(chunk.text, frames.x, frames.asr, style, frames.frame_lengths, noise, other))
            if len(out) == count:
                return out
    return out


# ------------------------------------------------------------------ precision policies by patching
def _cast_args(args, dtype):
    return [a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args]


def _wrap(module: torch.nn.Module, context, cast: bool, name: str = "forward", float_out: bool = False) -> None:
    """Run `module.<name>` inside `context()`; cast float inputs to float32 first (`cast`), outputs after
    (`float_out`: values unchanged, as the old code's `.float()` after the region did)."""
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        with context():
            out = original(*_cast_args(args, torch.float32) if cast else args, **kwargs)
        if float_out:
            return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()
        return out

    setattr(module, name, wrapped)


def family_modules(net, family: str) -> list[torch.nn.Module]:
    gen, dec, pred = net.decoder.generator, net.decoder, net.predictor
    adains = [m for m in net.modules() if isinstance(m, AdaIN1d)]
    return {
        "adain_fc": [m.fc for m in adains],
        "adain": adains,
        "gen_resblocks": list(gen.resblocks),
        "noise_convs": list(gen.noise_convs),
        "noise_res": list(gen.noise_res),
        "ups": list(gen.ups),
        "conv_post": [gen.conv_post],
        "decoder": [dec.encode, *dec.decode, dec.F0_conv, dec.N_conv, dec.asr_res],
        "f0n": [*pred.F0, *pred.N, pred.F0_proj, pred.N_proj],
        "f0n_proj": [pred.F0_proj, pred.N_proj],
        "source": [gen.m_source],
    }[family]


@contextlib.contextmanager
def policy(net, families: list[str], context, cast: bool, old: bool = False):
    """Run `families` of `net` inside `context()` (autocast off, or on), casting their float inputs to float32 when
    `cast`; restores the network afterwards. `old`: re-enable autocast where the model code now disables it, as the
    code before issue 11 ran (the F0/N predictor as one call, conv_post with its output cast to float32)."""
    patched: list[tuple[object, str]] = []
    saved = {}
    try:
        for family in families:
            if old:
                target, name = {"f0n": (net.predictor, "pitch_energy"), "conv_post": (net.decoder.generator.conv_post,
                                                                                    "forward")}[family]
                _wrap(target, context, False, name, float_out=True)
                patched.append((target, name))
            elif family == "snake":
                saved["snake"] = generator_module.snake
                original = saved["snake"]

                def snake(x, alpha, _original=original):
                    with context():
                        return _original(x.float() if cast else x, alpha)

                generator_module.snake = snake
            elif family == "residual":
                cls = generator_module.AdaINResBlock1
                saved["residual"] = cls.forward
                original = saved["residual"]

                def forward(self, x, s, mask, _original=original):
                    return _original(self, x.float(), s, mask)  # x + h then stays float32 through the stream

                cls.forward = forward
            else:
                for m in family_modules(net, family):
                    _wrap(m, context, cast)
                    patched.append((m, "forward"))
        yield
    finally:
        for m, name in patched:
            delattr(m, name)
        if "snake" in saved:
            generator_module.snake = saved["snake"]
        if "residual" in saved:
            generator_module.AdaINResBlock1.forward = saved["residual"]


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: torch.dtype | None  # autocast dtype (None: float32)
    mode: str = "all"  # "all": autocast everywhere but `families` (float32); "only": autocast only in `families`;
    # "old": autocast everywhere, re-enabled inside `families` (where the model code disables it)
    families: tuple[str, ...] = ()
    other_seed: bool = False


def parse_variant(spec: str) -> Variant:
    if spec == "fp32-seed":
        return Variant(spec, None, other_seed=True)
    if spec in DTYPES:
        return Variant(spec, DTYPES[spec])
    if spec in ("bf16-old", "fp16-old"):
        return Variant(spec, DTYPES[spec[:4]], "old", FLOAT32_REGIONS)
    head, _, fams = spec.partition(":")
    families = tuple(f for f in fams.split(",") if f)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or head not in ("bf16-fp32", "fp16-fp32", "fp32-bf16", "fp32-fp16") or not families:
        raise SystemExit(f"bad variant {spec!r}: use fp32, fp32-seed, bf16, fp16, bf16-fp32:FAM,.. or fp32-bf16:FAM,..; "
                         f"families: {', '.join(FAMILIES)}")
    a, b = head.split("-")
    if a == "fp32":
        return Variant(spec, DTYPES[b], "only", families)
    return Variant(spec, DTYPES[a], "all", families)


def ablation_variants(dtype: str) -> list[str]:
    return [dtype] + [f"{dtype}-fp32:{f}" for f in FAMILIES] + [f"fp32-{dtype}:{f}" for f in FAMILIES if f not in ("source", "residual", "snake")]


def contexts(variant: Variant):
    """(outer context, inner context for the families, cast family inputs to float32?) of a variant."""
    dtype = variant.dtype
    if dtype is None:
        return contextlib.nullcontext, contextlib.nullcontext, False
    on = lambda: torch.autocast("cpu", dtype=dtype)  # noqa: E731
    off = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731
    return {"all": (on, off, True), "only": (off, on, False), "old": (on, on, False)}[variant.mode]


def run_variant(net, variant: Variant, chunk: Chunk, render=None) -> tuple[np.ndarray, float]:
    """One chunk's frame phase under `variant` (with `render`, a compiled `net.render`, if given)."""
    noise = chunk.other_noise if variant.other_seed else chunk.noise
    outer, inner, cast = contexts(variant)
    families = list(variant.families) if variant.dtype is not None else []
    with torch.inference_mode(), policy(net, families, inner, cast, variant.mode == "old"), outer():
        t0 = time.perf_counter()
        audio = (render or net.render)(chunk.x, chunk.asr, chunk.style, chunk.lengths, noise)
        elapsed = time.perf_counter() - t0
    n = int(chunk.lengths[0]) * SAMPLES_PER_FRAME
    return audio[0, :n].float().numpy().copy(), elapsed


def time_compiled(net, variants: list[Variant], chunks: list[Chunk]) -> dict[str, dict]:
    """Frame-phase seconds per variant under torch.compile(dynamic=True): compile and warm up each variant on
    three chunks of different lengths, then time every chunk round-robin across variants."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    torch._dynamo.reset()
    renders, out = {}, {}
    warm = sorted(chunks, key=lambda c: int(c.lengths[0]))[:: max(1, len(chunks) // 3)][:3]
    for v in variants:
        renders[v.name] = torch.compile(net.render, dynamic=True)
        t0 = time.perf_counter()
        for c in warm:
            run_variant(net, v, c, renders[v.name])
        out[v.name] = {"warmup_s": time.perf_counter() - t0, "frame_s": 0.0}
        log(f"compiled {v.name}: warm-up {out[v.name]['warmup_s']:.0f} s")
    for k, c in enumerate(chunks):
        for v in variants:
            out[v.name]["frame_s"] += run_variant(net, v, c, renders[v.name])[1]
    base = out.get("fp32", next(iter(out.values())))["frame_s"]
    for r in out.values():
        r["vs_fp32_time"] = r["frame_s"] / base
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--variants", default="fp32,fp32-seed,bf16", help="comma-separated; see above (families "
                        "inside one variant are joined with '+', e.g. bf16-fp32:conv_post+f0n)")
    parser.add_argument("--ablation", action="append", default=[], choices=["bf16", "fp16"],
                        help="add the per-family ablation for this dtype (may repeat)")
    parser.add_argument("--dnsmos", action="store_true", help="DNSMOS overall per variant")
    parser.add_argument("--asr", default="", help="comma-separated variants to judge with Whisper tiny.en")
    parser.add_argument("--compiled", default="", help="comma-separated variants to time under torch.compile too")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    specs = [v.replace("+", ",") for v in args.variants.split(",") if v]
    specs[:0] = ["fp32"] if "fp32" not in specs else []
    for dt in args.ablation:
        specs += [s for s in ablation_variants(dt) if s not in specs]
    variants = [parse_variant(s) for s in specs]
    if any(v.dtype == torch.float16 for v in variants) and not torch.ops.mkldnn._is_mkldnn_fp16_supported():
        log("note: oneDNN reports no float16 support on this CPU; fp16 variants may be slow or fail")

    engine = Engine(device="cpu")
    net = engine.renderer.network
    chunks = prepare_chunks(engine, args.chunks)
    audio_s = sum(int(c.lengths[0]) for c in chunks) * SAMPLES_PER_FRAME / SAMPLE_RATE
    log(f"{len(chunks)} chunks, {audio_s:.1f} s of audio; {len(variants)} variants")

    run_variant(net, variants[0], chunks[0])  # warm-up (oneDNN primitive creation)
    audio = {v.name: [] for v in variants}
    times = {v.name: 0.0 for v in variants}
    for k, chunk in enumerate(chunks):
        for v in variants:
            a, t = run_variant(net, v, chunk)
            audio[v.name].append(a)
            times[v.name] += t
        log(f"chunk {k + 1}/{len(chunks)} done")

    from voicegen.eval.spectral import log_mel_distance

    results = {}
    ref = audio["fp32"]
    for v in variants:
        d = [log_mel_distance(r, a) for r, a in zip(ref, audio[v.name])]
        results[v.name] = {"dist_mean": float(np.mean(d)), "dist_max": float(np.max(d)), "dist": d,
                           "frame_s": times[v.name], "vs_fp32_time": times[v.name] / times["fp32"]}
    if args.dnsmos:
        from voicegen.eval.dnsmos import Dnsmos

        judge = Dnsmos(threads=args.threads)
        for v in variants:
            s = judge.mean(audio[v.name], SAMPLE_RATE)
            results[v.name].update(dnsmos_ovrl=s.overall, dnsmos_sig=s.signal, dnsmos_bak=s.background)
    asr = [s for s in args.asr.split(",") if s]
    if asr:
        from voicegen.eval.asr import Transcriber
        from voicegen.eval.wer import corpus_word_error_rate

        whisper = Transcriber(cpu_threads=args.threads)
        texts = [c.text for c in chunks]
        for name in asr:
            heard = [whisper.transcribe(a, SAMPLE_RATE) for a in audio[name.replace("+", ",")]]
            results[name.replace("+", ",")]["wer"] = corpus_word_error_rate(texts, heard)

    compiled = [parse_variant(v.replace("+", ",")) for v in args.compiled.split(",") if v]
    if compiled:
        for name, r in time_compiled(net, compiled, chunks).items():
            results.setdefault(name, {}).update({f"compiled_{k}": v for k, v in r.items()})

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "device": f"CPU x{args.threads} threads, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "chunks": len(chunks),
        "audio_s": audio_s,
        "results": results,
    }
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"precision-{datetime.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    def f(value, spec):
        return "-" if value is None else format(value, spec)

    print(f"\n{'variant':34} {'dist mean':>9} {'dist max':>8} {'eager t/fp32':>12} {'compiled t/fp32':>15} "
          f"{'DNSMOS':>6} {'WER':>6}")
    for name, r in results.items():
        print(f"{name:34} {f(r.get('dist_mean'), '9.3f'):>9} {f(r.get('dist_max'), '8.3f'):>8} "
              f"{f(r.get('vs_fp32_time'), '.2f'):>12} {f(r.get('compiled_vs_fp32_time'), '.2f'):>15} "
              f"{f(r.get('dnsmos_ovrl'), '.3f'):>6} {f(r.get('wer'), '.3f'):>6}")
    print(f"{len(chunks)} chunks, {audio_s:.1f} s of audio; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
