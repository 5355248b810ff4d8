"""torch.compile readiness of the frame phase, and the CUDA paths (skipped cleanly without CUDA)."""

import pickle
from pathlib import Path

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
    ref = Engine(device="cuda", performance=Performance()).synthesize(text, seed=0)
    bf16 = Engine(device="cuda", performance=Performance(dtype=torch.bfloat16)).synthesize(text, seed=0)
    assert len(ref.samples) == len(bf16.samples)
    assert log_mel_distance(ref.samples, bf16.samples) < 0.15  # issue 11 (0.319 before the float32 regions)


@cuda
def test_cuda_graphs_match_eager(strict_float32):
    from voicegen import Engine, Performance

    text = "Graphs replay the same kernels."
    eager = Engine(device="cuda", performance=Performance()).synthesize(text, seed=0)
    graphed = Engine(device="cuda", performance=Performance(cuda_graphs=True)).synthesize(text, seed=0)
    np.testing.assert_allclose(graphed.samples, eager.samples, atol=1e-3)


def test_cuda_options_are_refused_on_cpu():
    from voicegen import Engine, Performance

    with pytest.raises(ValueError, match="CUDA"):
        Engine(device="cpu", performance=Performance(cuda_graphs=True))
    with pytest.raises(ValueError, match="dtype must be"):
        Engine(device="cpu", performance=Performance(dtype=torch.int8))


def test_the_default_is_the_fast_path_on_cuda_and_eager_on_the_cpu(monkeypatch):
    """Issue 14: with no Performance given, CUDA gets compile + bfloat16 + CUDA graphs (without Triton, where torch
    cannot compile for CUDA, the same uncompiled); the CPU eager float32 with the long convolutions through the FFT;
    Performance() itself stays eager float32 with direct convolutions everywhere (the debugging path)."""
    from voicegen import Performance, performance

    cuda = torch.device("cuda")
    monkeypatch.setattr(performance, "can_compile_cuda", lambda: True)
    assert Performance.default(cuda) == Performance(compile=True, dtype=torch.bfloat16, cuda_graphs=True)
    monkeypatch.setattr(performance, "can_compile_cuda", lambda: False)
    assert Performance.default(cuda) == Performance(compile=False, dtype=torch.bfloat16, cuda_graphs=True)
    assert Performance.default(torch.device("cpu")) == Performance(fft_convs=True)
    assert not (Performance().compile or Performance().dtype or Performance().cuda_graphs or Performance().fft_convs)


@pytest.mark.parametrize("gib, frames", [(80, 16384), (24, 16384), (16, 11520), (8, 5632), (1, 512)])
def test_the_cuda_batch_budget_follows_the_device_memory(monkeypatch, gib, frames):
    """The frame budget comes from the card's memory (half of it at ~0.7 MB per frame, multiples of 256), capped at
    CUDA_BATCH_FRAMES: an 8 GB card does not get the 16k frames (~11 GB) an H100 does."""
    from types import SimpleNamespace

    from voicegen import performance

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=gib * 2**30))
    assert performance.cuda_batch_frames(torch.device("cuda")) == frames
    assert performance.Performance().check(torch.device("cuda")).max_batch_frames == frames
    assert performance.Performance(max_batch_frames=1000).check(torch.device("cuda")).max_batch_frames == 1000


def test_a_failed_compile_says_how_to_render_without_it(network, tmp_path, monkeypatch):
    """An error inside torch's compiler (as torch 2.11's CantSplit on an H100 was) reaches the user as one
    CompileFailed naming the way out, with the compiler's error chained, not as a traceback from inductor."""
    from voicegen.compiled import CompileFailed, FrameGraphs

    class Broken:
        def aot_compile(self, example):
            raise IndexError("CantSplit: 512*s77 not divisible by 512*s53*s77\n(long inductor detail)")

    monkeypatch.setattr(torch, "compile", lambda *a, **k: Broken())
    graphs = FrameGraphs(network, torch.device("cpu"), None, directory=tmp_path)
    x = torch.zeros(2, 512, 32)
    with pytest.raises(CompileFailed, match=r"IndexError: CantSplit.*Performance\(compile=False\).*--no-compile") as info:
        graphs(x, x, torch.zeros(2, 256), torch.tensor([32, 32]), torch.tensor([0, 1]), torch.zeros(2))
    assert isinstance(info.value.__cause__, IndexError) and "long inductor detail" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing saved


def test_cuda_graphs_are_checked_and_run_at_one_thread_count(network, tmp_path):
    """Compiled graphs guard on torch's CPU thread count; on CUDA that count means nothing to the kernels, so the
    graphs are compiled, loaded and called at CUDA_GUARD_THREADS whatever the process set (an H100 run's tests,
    at 2 threads, rejected the benchmark's graphs, compiled at 16, and compiled for minutes again). The caller's
    count comes back afterwards. On the CPU the count is left alone: its compiled code uses those threads."""
    import warnings

    from voicegen.compiled import CUDA_GUARD_THREADS, FrameGraphs

    before = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autocast("cuda") without a GPU says it is disabled
        with FrameGraphs(network, torch.device("cuda"), torch.bfloat16, directory=tmp_path).context():
            assert torch.get_num_threads() == CUDA_GUARD_THREADS
    assert torch.get_num_threads() == before
    with FrameGraphs(network, torch.device("cpu"), None, directory=tmp_path).context():
        assert torch.get_num_threads() == before


def test_warmup_captures_cuda_graphs_only_for_small_shapes():
    """With CUDA graphs, warm-up runs exactly the bucket shapes that the graph cache captures (rows x frames up to
    its cap; by default GRAPH_MAX_FRAMES covers the whole budget, here a stand-in caps at 4,096); larger batches
    run uncaptured and, eager, need nothing ahead of time. The stand-in records the calls (capture needs a GPU)."""
    from dataclasses import replace

    from voicegen.model.cuda_graphs import GRAPH_MAX_FRAMES
    from voicegen.performance import CUDA_BATCH_FRAMES
    from voicegen.renderer import Renderer

    cap = 4096

    class Graphs:
        graphs: dict = {}
        ran: list = []

        def captures(self, rows, frames):
            return rows * frames <= cap

        def run(self, x, *rest):
            self.ran.append((x.shape[0], x.shape[-1]))
            return torch.zeros(x.shape[0], 600 * x.shape[-1])

    assert GRAPH_MAX_FRAMES >= CUDA_BATCH_FRAMES  # the default captures every shape of the largest budget
    renderer = Renderer(device="cpu")
    renderer.performance = replace(renderer.performance, max_batch_frames=16384)
    renderer.static_shapes, renderer._min_rows, renderer._graphs = True, 2, Graphs()
    report = renderer.warmup()
    small = [(r, f) for r, f in report.shapes if r * f <= cap]
    assert len(report.shapes) == 88 and 0 < len(small) < len(report.shapes)
    assert report.shapes_run == renderer._graphs.ran == small
    renderer.close()


def test_cli_speed_flags_override_the_device_default():
    """No flag: the device's default (None); --compile / --no-compile / --dtype change only what they name."""
    from voicegen import Performance
    from voicegen.cli import _performance, build_parser

    def perf(*argv):
        return _performance(build_parser().parse_args(["say", "hi", "-o", "x.wav", "--device", "cpu", *argv]))

    assert perf() is None
    # the CPU default (fft_convs) stays; it resolves off where compile or a reduced dtype takes over (Performance.check)
    assert perf("--compile") == Performance(compile=True, fft_convs=True)
    assert perf("--no-compile", "--dtype", "float32") == Performance(fft_convs=True)


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
    # inputs that no compiled graph accepts, with the graph budget spent, are an error, never a silent eager run
    import voicegen.renderer as renderer_module

    renderer = compiled.renderer
    rows, frames = min(compiled.stats.shapes)  # a shape the graphs built above accept
    with torch.inference_mode():
        x, asr, style, lengths, seeds, pitch = renderer._synthetic(rows, frames)
        strided = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values and shape, other strides: other guards
    assert renderer._compiled.serves(x, asr, style, lengths, seeds, pitch)
    assert not renderer._compiled.serves(strided, asr, style, lengths, seeds, pitch)
    limit = renderer_module.RECOMPILE_LIMIT
    try:
        renderer_module.RECOMPILE_LIMIT = len(renderer._compiled.graphs)
        with pytest.raises(RuntimeError, match="refusing to fall back to eager"), torch.inference_mode():
            renderer._frame_run(strided, asr, style, lengths, seeds, pitch)
    finally:
        renderer_module.RECOMPILE_LIMIT = limit


_SECOND_PROCESS = """
import json, sys, torch
torch.set_num_threads(2)
from voicegen.performance import Performance
from voicegen.renderer import Renderer
r = Renderer(device="cpu", performance=Performance(compile=True))
load = r._compiled.load()
with torch.inference_mode():  # another size of several rows: the same graph
    served = r._compiled.serves(*r._synthetic(3, 64))
audio = r._worker_free_call(2, 40)
r._worker_free_call(3, 64)
torch.save(audio, sys.argv[1])
print(json.dumps({"loaded": load.loaded, "failed": load.failed, "compiled": r._compiled.compiled, "served": served,
                  "graphs": len(r._compiled.graphs), "dir": str(r._compiled.directory)}))
"""


@pytest.mark.slow
def test_compiled_graph_is_reused_from_the_cache_by_a_second_process(tmp_path):
    """A second process loads the compiled frame phase that the first saved instead of tracing and compiling it,
    serves another batch size with it, and gives the same audio; unusable files beside it (garbage, a truncated
    graph) are deleted with a warning and do not stop the good one from loading. Catches graphs saved elsewhere or
    keyed on something that changes per process, guards that reject every call of a loaded graph, a graph per size,
    and a damaged file that crashes the load."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "compiled"))
    runs, audio, stderr = [], [], []
    for k in range(2):
        if k == 1:  # damage the cache beside the good graph before the second process
            (good,) = Path(runs[0]["dir"]).glob("*.graph")
            (good.parent / "9x9-garbage.graph").write_bytes(b"not a pickle")
            (good.parent / "9x9-truncated.graph").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        out_path = tmp_path / f"audio{k}.pt"
        out = subprocess.run([sys.executable, "-W", "always", "-c", _SECOND_PROCESS, str(out_path)], env=env,
                             capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        audio.append(torch.load(out_path))
        stderr.append(out.stderr)
    first, second = runs
    assert Path(first["dir"]).is_relative_to(tmp_path / "compiled")
    assert (first["loaded"], first["compiled"], first["graphs"]) == (0, 1, 1), first
    assert (second["loaded"], second["compiled"], second["graphs"], second["served"]) == (1, 0, 1, True), second
    assert len(second["failed"]) == 2 and "CompileCacheWarning" in stderr[1], runs
    assert [p.name for p in Path(first["dir"]).glob("*.graph")] == [good.name]  # the damaged files are gone
    np.testing.assert_allclose(audio[1].numpy(), audio[0].numpy(), atol=1e-5)


def test_an_unusable_graph_file_is_deleted_with_a_warning(network, tmp_path):
    """Garbage, a file of another layout version and an empty file in the graph directory: each is reported, deleted
    with a CompileCacheWarning, and no graph is taken from them (a call would compile anew). Catches a damaged cache
    that crashes the engine or is loaded as if it were good."""
    from voicegen.compiled import FORMAT, CompileCacheWarning, FrameGraphs

    (tmp_path / "2x40-a.graph").write_bytes(b"\x80\x04garbage")
    (tmp_path / "2x40-b.graph").write_bytes(pickle.dumps({"format": FORMAT + 1, "artifact": b""}))
    (tmp_path / "2x40-c.graph").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a graph")
    graphs = FrameGraphs(network, torch.device("cpu"), directory=tmp_path)
    with pytest.warns(CompileCacheWarning, match="deleting it"):
        load = graphs.load()
    assert load.loaded == 0 and len(load.failed) == 3 and graphs.graphs == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_artifact_key_names_what_compiled_code_depends_on(network, monkeypatch):
    """The graph directory's key is stable, and changes with the dtype, the device, the CPU's instruction set, the
    torch version, our model code and the parameter shapes (catches a stale graph loaded after an upgrade or a code
    change, or AVX-512 code loaded on a CPU without it)."""
    import voicegen.compiled as compiled

    cpu = torch.device("cpu")
    key = compiled.artifact_key(network, cpu, None)
    assert key == compiled.artifact_key(network, cpu, None)
    assert key != compiled.artifact_key(network, cpu, torch.bfloat16)
    assert key != compiled.artifact_key(network, torch.device("meta"), None)
    small = torch.nn.Linear(2, 3)
    assert compiled.artifact_key(small, cpu, None) != compiled.artifact_key(torch.nn.Linear(2, 4), cpu, None)
    monkeypatch.setattr(compiled, "_code_digest", lambda: "other code")
    assert key != compiled.artifact_key(network, cpu, None)
    monkeypatch.undo()
    monkeypatch.setattr(compiled, "_cpu_isa", lambda: "x86_64 avx2")  # a cache shared with an older CPU
    assert key != compiled.artifact_key(network, cpu, None)
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert key != compiled.artifact_key(network, cpu, None)


def test_compile_cache_lives_under_the_voicegen_cache_unless_the_user_chose_one(monkeypatch, tmp_path):
    """Importing torch's compiler writes its own default (/tmp/torchinductor_<user>) into TORCHINDUCTOR_CACHE_DIR;
    that counts as unset, so compiled graphs still land in the voicegen cache. A directory the user chose stays."""
    import torch._inductor.config  # noqa: F401 - the import that fills in torch's default

    from voicegen.compiled import _torch_default_cache_dir, compile_cache_dir

    monkeypatch.setenv("VOICEGEN_CACHE", str(tmp_path / "vg"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", _torch_default_cache_dir())
    assert compile_cache_dir() == str(tmp_path / "vg" / "torch-compile")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert compile_cache_dir() == str(tmp_path / "vg" / "torch-compile")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache_dir() == str(tmp_path / "mine")


def test_warmup_reports_what_it_ran(engine):
    """An eager engine's warm-up runs its one shape and says so (the compiled and graphed paths report their
    shapes, cache traffic and captured graphs the same way)."""
    report = engine.warmup()
    assert report.shapes == report.shapes_run == [(1, 32)] and not report.compiled and report.graphs_captured == 0
    assert report.graphs_loaded == report.graphs_compiled == 0 and report.cache_dir is None
    assert "1 frame-phase shape," in str(report) or str(report).endswith("1 frame-phase shape")
