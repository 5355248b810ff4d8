"""torch.compile readiness of the frame phase, and the CUDA paths (skipped cleanly without CUDA)."""

import numpy as np
import pytest
import torch

from voicegen.model.layers import lengths_to_mask


def _frame_inputs(frames=48, batch=2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 512, frames, generator=g) * 0.1
    asr = torch.randn(batch, 512, frames, generator=g) * 0.1
    style = torch.randn(batch, 256, generator=g) * 0.1
    lengths = torch.tensor([frames, frames - 10])[:batch]
    return x, asr, style, lengths


def test_frame_phase_traces_as_one_graph_without_breaks(network):
    x, asr, style, lengths = _frame_inputs()
    seeds, pitch = torch.tensor([7, -1]), torch.tensor([0.0, 2.0])  # one item with noise, one without
    explanation = torch._dynamo.explain(network.render)(x, asr, style, lengths, seeds, pitch)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_lengths_to_mask():
    mask = lengths_to_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.shape == (3, 1, 3)
    assert mask[:, 0].tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 1]]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
def test_bf16_autocast_stays_close_to_float32(strict_float32):
    from voicegen import Engine, Performance
    from voicegen.eval.spectral import log_mel_distance

    text = "Reduced precision should still sound the same."
    ref = Engine(device="cuda").synthesize(text, seed=0)
    bf16 = Engine(device="cuda", performance=Performance(dtype=torch.bfloat16)).synthesize(text, seed=0)
    assert len(ref.samples) == len(bf16.samples)
    assert log_mel_distance(ref.samples, bf16.samples) < 0.15  # issue 11 (0.319 before the float32 regions)


@cuda
def test_cuda_graphs_match_eager(strict_float32):
    from voicegen import Engine, Performance

    text = "Graphs replay the same kernels."
    eager = Engine(device="cuda").synthesize(text, seed=0)
    graphed = Engine(device="cuda", performance=Performance(cuda_graphs=True)).synthesize(text, seed=0)
    np.testing.assert_allclose(graphed.samples, eager.samples, atol=1e-3)


def test_cuda_options_are_refused_on_cpu():
    from voicegen import Engine, Performance

    with pytest.raises(ValueError, match="CUDA"):
        Engine(device="cpu", performance=Performance(cuda_graphs=True))
    with pytest.raises(ValueError, match="dtype must be"):
        Engine(device="cpu", performance=Performance(dtype=torch.int8))


@pytest.mark.slow
def test_compiled_engine_on_cpu_matches_eager_without_bucket_padding(engine):
    """Performance(compile=True) on the CPU: symbolic sizes, so batches pad only to their longest item (no bucket
    rows or frames), and the audio is the eager audio up to rounding as the network amplifies it."""
    from voicegen import Engine, Performance, Request

    texts = ["Compiled and eager must agree.", "A second, somewhat longer sentence joins the batch."]
    compiled = Engine(device="cpu", performance=Performance(compile=True))
    got = compiled.synthesize_many([Request(t, seed=i) for i, t in enumerate(texts)])
    want = engine.synthesize_many([Request(t, seed=i) for i, t in enumerate(texts)])
    item_frames = {len(a.samples) // 600 for a in want}  # one sentence each: audio = frames x 600 samples
    assert {frames for _, frames in compiled.stats.shapes} <= item_frames  # padded to the longest item only
    assert all(rows <= len(texts) for rows, _ in compiled.stats.shapes)  # no empty bucket rows
    for a, b in zip(got, want):
        assert len(a.samples) == len(b.samples)
        rms = float(np.sqrt(np.mean(b.samples.astype(np.float64) ** 2)))
        assert float(np.sqrt(np.mean((a.samples.astype(np.float64) - b.samples) ** 2))) <= 5e-2 * rms
    # past the recompile budget a new shape is an error, never a silent fall back to eager
    import voicegen.renderer as renderer_module

    limit = renderer_module.RECOMPILE_LIMIT
    try:
        renderer_module.RECOMPILE_LIMIT = 1
        with pytest.raises(RuntimeError, match="refusing to fall back to eager"):
            compiled.renderer._worker_free_call(1, 1)  # one row of one frame: a shape compilers specialize
    finally:
        renderer_module.RECOMPILE_LIMIT = limit


@pytest.mark.slow
def test_compiled_code_is_reused_from_the_cache_by_a_second_process(tmp_path):
    """A second process finds the compiled frame phase in the cache directory instead of compiling it again
    (catches a cache written elsewhere, keyed on something that changes per process, or not used at all)."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, torch\n"
        "torch.set_num_threads(2)\n"
        "from torch._dynamo.utils import counters\n"
        "from voicegen.performance import Performance\n"
        "from voicegen.renderer import Renderer\n"
        "r = Renderer(device='cpu', performance=Performance(compile=True))\n"
        "r._worker_free_call(1, 48)\n"
        "print(json.dumps({'hits': counters['inductor']['fxgraph_cache_hit'],"
        " 'misses': counters['inductor']['fxgraph_cache_miss'], 'dir': __import__('os').environ['TORCHINDUCTOR_CACHE_DIR']}))\n"
    )
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "compiled"))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["dir"] == str(tmp_path / "compiled") and first["misses"] >= 1
    assert second["hits"] >= 1 and second["misses"] == 0, runs


def test_warmup_reports_what_it_ran(engine):
    """An eager engine's warm-up runs its one shape and says so (the compiled and graphed paths report their
    shapes, cache traffic and captured graphs the same way)."""
    report = engine.warmup()
    assert report.shapes == [(1, 32)] and not report.compiled and report.graphs_captured == 0
    assert "1 frame-phase shape," in str(report) or str(report).endswith("1 frame-phase shape")
