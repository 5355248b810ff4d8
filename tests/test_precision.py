"""Reduced precision that keeps the voice (issue 11): which layers stay float32 under autocast, and how close the
reduced-precision audio stays to float32 (log-mel distance), on the CPU where bfloat16 runs and on CUDA."""

import numpy as np
import pytest
import torch

from voicegen.performance import cpu_supports_bf16

SENTENCES = [
    "Reduced precision should still sound the same.",
    "The meeting moved to 3:45 p.m. on Thursday, March 5th.",
    "Pitch is the part of a voice that a listener notices first.",
]

cpu_bf16 = pytest.mark.skipif(not cpu_supports_bf16(), reason="no bfloat16 kernels on this CPU (AVX512-BF16/AMX)")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _frame_inputs(frames=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 512, frames, generator=g) * 0.1
    asr = torch.randn(2, 512, frames, generator=g) * 0.1
    style = torch.randn(2, 256, generator=g) * 0.1
    seeds = torch.tensor([3, 5])  # source noise drawn inside the frame phase from each item's seed
    return x, asr, style, torch.tensor([frames, frames - 8]), seeds


def test_pitch_and_spectrum_layers_stay_float32_under_autocast(network):
    """Catches the float32 regions being dropped: under bfloat16 autocast the F0/N predictor must return the
    float32 pitch and energy (bfloat16 would round 200 Hz to 1 Hz steps) and conv_post must compute its
    log-magnitude and phase in float32; both measured as the layers that carry reduced precision's error."""
    x, asr, style, lengths, seeds = _frame_inputs()
    seen = {}
    hooks = [
        network.decoder.generator.conv_post.register_forward_hook(lambda m, i, o: seen.__setitem__("post", o)),
        network.predictor.F0_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("f0", o)),
    ]
    try:
        with torch.inference_mode():
            network.render(x, asr, style, lengths, seeds)
            f0_32 = seen["f0"].clone()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                network.render(x, asr, style, lengths, seeds)
    finally:
        for h in hooks:
            h.remove()
    assert seen["post"].dtype == torch.float32
    assert seen["f0"].dtype == torch.float32
    torch.testing.assert_close(seen["f0"], f0_32, rtol=1e-5, atol=1e-4)  # the same pitch, not a rounded one


def test_frame_phase_under_autocast_traces_as_one_graph(network):
    """Catches a precision policy that breaks the compiled frame phase into pieces (autocast regions must trace)."""
    x, asr, style, lengths, seeds = _frame_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explanation = torch._dynamo.explain(network.render)(x, asr, style, lengths, seeds)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def _distances(device: str, dtype: torch.dtype, engine=None) -> list[float]:
    from voicegen import Engine, Performance, Request
    from voicegen.eval.spectral import log_mel_distance

    requests = [Request(s, voice=v, seed=i) for i, (s, v) in enumerate(zip(SENTENCES, ["jf_gongitsune", "jf_alpha", "jm_kumo"]))]
    reference = (engine or Engine(device=device, performance=Performance())).synthesize_many(requests)
    reduced = Engine(device=device, performance=Performance(dtype=dtype)).synthesize_many(requests)
    assert [len(a.samples) for a in reduced] == [len(a.samples) for a in reference]  # same durations
    return [log_mel_distance(a.samples, b.samples) for a, b in zip(reference, reduced)]


def test_albert_in_float16_keeps_the_float32_durations(network, frontend, voice_tables, monkeypatch):
    """ALBERT's float16 region (`albert.HALF_PRECISION`, on by default on CUDA) tried on the CPU, where autocast runs
    real float16 products: a padded batch gives float32 output within 2% of float32's, finite on padding (the key
    mask becomes -inf in float16), and the float32 durations on >= 99% of tokens, none more than a frame apart.
    Catches the region leaking into the LSTMs or the duration head, a non-float32 output, and a switch that does
    nothing (output identical to float32)."""
    from voicegen.model.acoustic import albert
    from voicegen.weights import style_for

    texts = SENTENCES + ["Could you tell me where the nearest library is?", "Yes."]
    token_lists = [frontend(t)[0].tokens for t in texts]
    lengths = torch.tensor([len(t) + 2 for t in token_lists])
    tokens = torch.zeros(len(texts), int(lengths.max()), dtype=torch.int64)
    for i, t in enumerate(token_lists):
        tokens[i, 1 : len(t) + 1] = torch.tensor(t)
    style = torch.stack([style_for(voice_tables["jf_alpha"], len(t)) for t in token_lists])
    valid = torch.arange(tokens.shape[1])[None] < lengths[:, None]
    runs = {}
    for name, dtype in (("float32", None), ("float16", torch.float16)):
        monkeypatch.setitem(albert.HALF_PRECISION, "cpu", dtype)
        with torch.inference_mode():
            bert = network.bert(tokens, valid)
            phase = network.encode(tokens, lengths, style, torch.ones(len(texts)))
        runs[name] = bert, phase.durations
    (b32, d32), (b16, d16) = runs["float32"], runs["float16"]
    assert b16.dtype == torch.float32 and torch.isfinite(b16).all()
    rel = float((b16 - b32)[valid].norm() / b32[valid].norm())
    assert 0 < rel < 2e-2, rel
    diff = (d16 - d32)[valid[:, : d32.shape[1]]]
    assert float((diff == 0).float().mean()) >= 0.99, diff
    assert int(diff.abs().max()) <= 1


@pytest.mark.slow
@cpu_bf16
def test_bfloat16_on_cpu_stays_within_015_nats_of_float32(engine):
    """Issue 11's goal on the CPU: bfloat16 within 0.15 nats of log-mel distance of float32 (it was 0.24-0.30 with
    the whole frame phase in bfloat16). Also below 0.06, under the distance between two noise seeds of one item
    (0.05-0.11): this catches either float32 region (F0/N predictor, conv_post) being lost, each of which alone
    leaves 0.11-0.20 (benchmarks/RESULTS.md, the ablation)."""
    distances = _distances("cpu", torch.bfloat16, engine)
    print("bfloat16 vs float32, nats:", [round(d, 3) for d in distances])
    assert float(np.mean(distances)) <= 0.06
    assert max(distances) <= 0.15


@cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_on_cuda_stays_within_015_nats_of_float32(dtype, strict_float32):
    """Issue 11's goal on CUDA (bfloat16 measured 0.319 on an H200 before the float32 regions): within 0.15 nats."""
    distances = _distances("cuda", dtype)
    print(f"{dtype} vs float32 on CUDA, nats:", [round(d, 3) for d in distances])
    assert max(distances) <= 0.15
