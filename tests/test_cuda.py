"""The CUDA paths against the float32 eager reference (skipped without CUDA): batch invariance on the device,
the compiled + bf16 + CUDA-graph path's closeness to float32, and source noise that is the same on either
device for a seed."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TEXTS = [
    "Batches on the device must not change what each sentence sounds like.",
    "A short one.",
    "The third sentence is somewhat longer, so the batch pads the other two to its length.",
]


def _relative_rms(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


def test_audio_in_a_cuda_batch_equals_audio_alone(strict_float32):
    """float32 eager on the device (TF32 off): padding and batch neighbours change nothing beyond convolution-algorithm
    rounding (a misplaced frame, wrong noise row or leaking mask gives a relative difference near 1)."""
    from voicegen import Engine, Performance, Request

    engine = Engine(device="cuda", performance=Performance())  # eager float32
    batch = engine.synthesize_many([Request(t, seed=i) for i, t in enumerate(TEXTS)])
    for i, text in enumerate(TEXTS):
        alone = engine.synthesize(text, seed=i)
        assert len(alone.samples) == len(batch[i].samples)
        assert _relative_rms(batch[i].samples, alone.samples) < 1e-2


def test_compiled_bf16_graphs_stay_close_to_float32_eager(strict_float32):
    """The fast path (compile + bfloat16 + CUDA graphs) against float32 eager on the same seeds: same lengths,
    log-mel distance within what bf16 costs (0.3 nats; a wrong voice is about 1.5)."""
    from voicegen import Engine, Performance, Request
    from voicegen.eval.spectral import log_mel_distance

    requests = [Request(t, seed=i) for i, t in enumerate(TEXTS)]
    ref = Engine(device="cuda", performance=Performance()).synthesize_many(requests)
    fast = Engine(device="cuda", performance=Performance(compile=True, dtype=torch.bfloat16, cuda_graphs=True))
    got = fast.synthesize_many(requests)
    for a, b in zip(got, ref):
        assert len(a.samples) == len(b.samples)
        assert log_mel_distance(b.samples, a.samples) < 0.3


def test_source_noise_is_the_same_on_cpu_and_cuda():
    from voicegen.model.vocoder.noise import gaussian_noise

    seeds = torch.tensor([0, 1, 123456789, 2**40 + 3])
    cpu = gaussian_noise(seeds, 4096)
    gpu = gaussian_noise(seeds.cuda(), 4096).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("way, dtype, tolerance", [
    ("unpacked", None, 1e-5), ("one_way", torch.float32, 1e-5), ("one_way", torch.float16, 5e-3)])
def test_unpacked_bilstm_equals_the_packed_one_on_cuda(strict_float32, way, dtype, tolerance):
    """`voicegen.model.layers.UNPACKED_BILSTM` on the device: cuDNN's padded call over the batch twice gives what
    its packed call gives (a backward direction that read padding would differ by ~1); `ONE_WAY_BILSTM`'s two
    one-way calls on two streams too, in float32 and in float16 (input and hidden sizes of 128, ten rows padded to
    16: the shapes for which cuDNN's persistent kernel may run), to float16's rounding."""
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(0)
    lstm = BiLSTM(128, 128).cuda().eval()
    lengths = torch.tensor([50, 17, 3, 49, 50, 1, 20, 33, 8, 41])
    x = torch.randn(10, 50, 128, device="cuda")
    with torch.inference_mode():
        got = lstm.unpacked(x, lengths) if dtype is None else lstm.one_way(x, lengths, dtype)
        torch.testing.assert_close(got, lstm(x, lengths), rtol=1e-4, atol=tolerance)


def test_a_packed_bilstm_on_cuda_never_waits_for_the_device(strict_float32):
    """`BiLSTM` with host lengths on the device: sorting, packing, the LSTM and unpacking are queued without one
    synchronizing call that torch can see (its sync debug mode set to raise: torch's own enforce_sorted=False path
    makes two per call), and give the packed LSTM's values."""
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(0)
    lstm = BiLSTM(64, 32)
    lengths = torch.tensor([9, 4, 13, 4, 1, 9])
    x = torch.randn(6, 13, 64)
    with torch.inference_mode():
        want = lstm(x, lengths)
    lstm, x = lstm.cuda(), x.cuda()
    with torch.inference_mode():
        lstm(x, lengths)  # cuDNN's first call sets itself up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            got = lstm(x, lengths)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("switches", [
    {}, {"ONE_WAY_BILSTM": None, "TEXT_ENCODER_STREAM": False}, {"ONE_WAY_BILSTM": None, "UNPACKED_BILSTM": True},
    {"ONE_WAY_BILSTM": None}], ids=["default", "packed", "unpacked", "packed-stream"])
def test_the_token_phase_encoder_never_waits_for_the_device(monkeypatch, switches):
    """`KokoroNetwork.encode` on CUDA with the lengths on the host (the engine's default path: ALBERT in float16,
    one-way float16 BiLSTMs, the text encoder on a second stream; and with the BiLSTMs packed or unpacked, on one
    stream or two) is queued without one synchronizing call that torch can see (sync debug mode set to raise): the
    only wait of a token batch is the read of its durations, after the encoder. Catches a blocking copy of a mask, a
    permutation, the lengths or an input."""
    from voicegen import Engine, Performance, Request
    from voicegen.model import layers, network

    for switch, on in switches.items():
        monkeypatch.setitem(getattr(layers if hasattr(layers, switch) else network, switch), "cuda", on)

    engine = Engine(device="cuda", performance=Performance())
    renderer = engine.renderer
    items = [item for i, t in enumerate(TEXTS) for item in engine.plan(Request(t, seed=i)).items]
    with torch.inference_mode():
        renderer._token_phase(items)  # cuDNN and the allocators set up; the durations to compare with
        tokens, lengths = renderer._token_matrix(items)  # as the token phase pads them
        tokens = torch.from_numpy(tokens).cuda()
        style = torch.stack([it.style for it in items]).cuda()
        speed = torch.ones(len(items), device="cuda")
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            phase = renderer.network.encode(tokens, lengths, style, speed)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert [int(d[: n].sum()) for d, n in zip(phase.durations.cpu(), lengths.tolist())] == [it._frames for it in items]


@pytest.mark.parametrize("switch, on", [("UNPACKED_BILSTM", True), ("ONE_WAY_BILSTM", torch.float32)])
def test_token_phase_in_cuda_graphs_equals_the_eager_one(strict_float32, monkeypatch, switch, on):
    """`voicegen.model.layers.TOKEN_GRAPHS`: the token phase's encoder replayed as captured graphs (rows padded to a
    power of two, BiLSTMs unpacked or one-way) gives the durations and frame features of the eager, packed token
    phase, for a batch and again for one more batch of another size (a second graph, and the first one replayed)."""
    from voicegen import Engine, Performance, Request
    from voicegen.model import layers

    engine = Engine(device="cuda", performance=Performance(cuda_graphs=True))
    texts = ["A short one.", "Something a little longer, with a comma.", "Three of them, the last one the longest "
             "of all, so that the token bucket grows."]
    items = [item for text in texts for item in engine.plan(Request(text, seed=0)).items]
    renderer = engine.renderer
    with torch.inference_mode():
        want = [renderer._token_phase(items), renderer._token_phase(items[:1])]
        durations = [it.durations.clone() for it in items]
        monkeypatch.setitem(getattr(layers, switch), "cuda", on)
        monkeypatch.setitem(layers.TOKEN_GRAPHS, "cuda", True)
        for _ in range(2):  # capture, then replay
            got = [renderer._token_phase(items), renderer._token_phase(items[:1])]
    assert renderer._token_graphs is not None and len(renderer._token_graphs.graphs) == 2
    shapes = renderer._token_graph_shapes()  # what warm-up captures: powers of two within both limits
    assert (1, 32) in shapes and all(rows & (rows - 1) == 0 and rows * size <= 2048 for rows, size in shapes)
    assert all(torch.equal(it.durations, d) for it, d in zip(items, durations))
    for (xa, aa), (xb, ab) in zip(got, want):
        torch.testing.assert_close(xa, xb, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(aa, ab, rtol=1e-4, atol=1e-5)


def test_a_pipelined_turn_on_two_streams_renders_as_the_whole_turn(strict_float32):
    """`Renderer.overlap` on the device: the token phase on a second stream, each token batch's frame batches queued
    before the next token phase. Same lengths, audio as the whole turn's within batch rounding (a store read before
    the token stream wrote it, or freed under the frame phase, gives noise: a relative difference near 1)."""
    from voicegen import Engine, Performance, Request

    engine = Engine(device="cuda", performance=Performance(max_batch_tokens=64))  # eager float32, small token batches
    requests = [Request(t, seed=i) for i, t in enumerate(TEXTS)]
    whole = engine.synthesize_many(requests)
    engine.renderer.overlap = True
    before = engine.renderer.stats.token_batches
    piped = engine.synthesize_many(requests)
    assert engine.renderer.stats.token_batches - before >= 2
    for a, b in zip(piped, whole):
        assert len(a.samples) == len(b.samples)
        assert _relative_rms(a.samples, b.samples) < 1e-2


def test_albert_float16_casts_are_autocasts_on_cuda(monkeypatch):
    """ALBERT's float16 region casts by hand, once per weight (`albert.HALF_PRECISION`), what CUDA's autocast casts
    on every pass: the two give the same output bit for bit (the same kernels on the same float16 operands). Catches a
    cast placed otherwise than autocast's policy (a layer norm or a residual sum in float16, attention in float32)."""
    from voicegen.model.acoustic import albert
    from voicegen.weights import load_network

    bert = load_network().bert.to("cuda")
    torch.manual_seed(0)
    lengths = torch.tensor([40, 25, 7])
    tokens = (torch.randint(1, 170, (3, 40)) * (torch.arange(40)[None] < lengths[:, None])).cuda()
    valid = (torch.arange(40)[None] < lengths[:, None]).cuda()
    with torch.inference_mode():
        monkeypatch.setitem(albert.HALF_PRECISION, "cuda", torch.float16)
        ours = bert(tokens, valid)
        monkeypatch.setitem(albert.HALF_PRECISION, "cuda", None)
        with torch.autocast("cuda", dtype=torch.float16):
            theirs = bert(tokens, valid).float()
    assert ours.dtype == torch.float32 and torch.isfinite(ours).all()
    assert torch.equal(ours, theirs), float((ours - theirs).abs().max())


def test_albert_from_cuda_graphs_gives_the_eager_token_phase(monkeypatch):
    """`layers.ALBERT_GRAPHS`: the token phase with ALBERT captured (first call) and replayed (second) gives the eager
    durations and frame features, for a batch of one row and one of three (padded to four), at shapes warm-up
    captures. Catches a replay that reads stale inputs or a padding row that changes the others."""
    from voicegen import Engine, Performance, Request
    from voicegen.model import layers

    engine = Engine(device="cuda", performance=Performance(cuda_graphs=True))
    renderer = engine.renderer
    for texts in (TEXTS[:1], TEXTS[:3]):
        items = [item for i, text in enumerate(texts) for item in engine.plan(Request(text, seed=i)).items]
        monkeypatch.setitem(layers.ALBERT_GRAPHS, "cuda", False)
        with torch.inference_mode():
            want = renderer._token_phase(items)
        durations = [it.durations.clone() for it in items]
        monkeypatch.setitem(layers.ALBERT_GRAPHS, "cuda", True)
        for _ in range(2):
            with torch.inference_mode():
                got = renderer._token_phase(items)
            assert all(torch.equal(it.durations, d) for it, d in zip(items, durations))
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    assert len(renderer._albert_graphs.graphs) >= 2
    shapes = renderer._albert_graph_shapes()  # what warm-up captures: every bucket at one row, for the first audio
    assert set(renderer._albert_graphs.graphs) <= set(shapes) and {(1, size) for _, size in shapes} <= set(shapes)


def test_albert_in_float16_keeps_the_float32_durations_on_cuda(monkeypatch):
    """CUDA's default ALBERT region (`albert.HALF_PRECISION`: float16 products on tensor cores) against ALBERT in
    float32 on the same device: >= 99% of token durations equal, none more than a frame apart (0.07% moved on the
    CPU's float16), float32 output. Catches the region leaking into the LSTMs or the duration head."""
    from voicegen import Engine, Performance, Request
    from voicegen.model.acoustic import albert

    engine = Engine(device="cuda", performance=Performance())
    items = [item for i, text in enumerate(TEXTS) for item in engine.plan(Request(text, seed=i)).items]
    durations = {}
    for dtype in (None, torch.float16):
        monkeypatch.setitem(albert.HALF_PRECISION, "cuda", dtype)
        with torch.inference_mode():
            engine.renderer._token_phase(items)
        durations[dtype] = torch.cat([it.durations for it in items])
    diff = durations[torch.float16] - durations[None]
    assert float((diff == 0).float().mean()) >= 0.99, diff
    assert int(diff.abs().max()) <= 1


def test_one_way_float16_bilstms_keep_the_float32_durations_on_cuda(monkeypatch):
    """`layers.ONE_WAY_BILSTM` = float16 (cuDNN's persistent kernel where it applies) against the packed float32
    BiLSTMs on the same device: >= 99% of token durations equal, none more than a frame apart, as for ALBERT's
    float16 region; the aligned features float32 and within 0.05 (the CPU's float16 LSTMs: 0.015 on a 5-minute corpus,
    benchmarks/RESULTS.md, thirteenth session; a direction not reversed back moves them by ~1)."""
    from voicegen import Engine, Performance, Request
    from voicegen.model import layers

    engine = Engine(device="cuda", performance=Performance())
    items = [item for i, text in enumerate(TEXTS) for item in engine.plan(Request(text, seed=i)).items]
    durations, stores = {}, {}
    for dtype in (None, torch.float16):
        monkeypatch.setitem(layers.ONE_WAY_BILSTM, "cuda", dtype)
        with torch.inference_mode():
            stores[dtype] = engine.renderer._token_phase(items)
        durations[dtype] = torch.cat([it.durations for it in items])
    diff = durations[torch.float16] - durations[None]
    assert float((diff == 0).float().mean()) >= 0.99, diff
    assert int(diff.abs().max()) <= 1
    assert stores[torch.float16][0].dtype == torch.float32
    if not diff.any():  # aligned alike: the shared BiLSTM's features to float16's rounding
        torch.testing.assert_close(stores[torch.float16][0], stores[None][0], rtol=0, atol=5e-2)


@pytest.mark.parametrize("one_way", [None, torch.float16])
def test_the_text_encoder_on_a_second_stream_gives_the_same_token_phase(strict_float32, monkeypatch, one_way):
    """`network.TEXT_ENCODER_STREAM`: the text encoder on its own stream, overlapping ALBERT and the duration
    predictor, the alignment waiting for it: the same durations and the same frame features as in order (the same
    kernels), twice in a row (a feature read before the stream finished, or a mask reused under it, would differ);
    also with the one-way BiLSTMs, whose backward directions use a stream of their own."""
    from voicegen import Engine, Performance, Request
    from voicegen.model import layers, network

    monkeypatch.setitem(layers.ONE_WAY_BILSTM, "cuda", one_way)
    monkeypatch.setitem(network.TEXT_ENCODER_STREAM, "cuda", False)  # on by default: the reference runs in order
    engine = Engine(device="cuda", performance=Performance())
    items = [item for i, text in enumerate(TEXTS) for item in engine.plan(Request(text, seed=i)).items]
    with torch.inference_mode():
        want = engine.renderer._token_phase(items)
        durations = [it.durations.clone() for it in items]
        monkeypatch.setitem(network.TEXT_ENCODER_STREAM, "cuda", True)
        for _ in range(2):
            got = engine.renderer._token_phase(items)
            assert all(torch.equal(it.durations, d) for it, d in zip(items, durations))
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_queueing_a_frame_batch_never_waits_for_the_device():
    """Issue 11 item 3: a frame batch's inputs are gathered and copied to the device, the network launched and the
    copy of its samples back started without one synchronizing call (torch's sync debug mode set to raise), so the
    next batch can be queued while this one renders; the collected audio is then that of the same items rendered
    the usual way. Catches a blocking `.to(device)` (a stream sync) or a host read of a device value."""
    from voicegen import Engine, Performance, Request
    from voicegen.batching import frame_batches

    engine = Engine(device="cuda", performance=Performance(dtype=torch.bfloat16, cuda_graphs=True))
    renderer = engine.renderer

    def items_of():
        return [item for i, t in enumerate(TEXTS) for item in engine.plan(Request(t, seed=i)).items]

    reference = renderer.render(items_of())  # the usual way; captures the graphs of these shapes
    items = items_of()
    with torch.inference_mode():
        batches = renderer.token_batches(items)
        store_x, store_asr = renderer._token_store([[items[i] for i in b] for b in batches])
        plans = frame_batches([it._frames for it in items], renderer.performance.max_batch_frames,
                              renderer.frame_buckets, static=renderer.static_shapes, min_rows=renderer._min_rows)
        launched = []
        torch.cuda.set_sync_debug_mode("error")
        try:
            for plan in plans:
                launched.append(renderer._frame_phase(plan, [items[i] for i in plan.items], store_x, store_asr))
        finally:
            torch.cuda.set_sync_debug_mode("default")
        renderer._drain(launched)
    for it, ref in zip(items, reference):
        assert len(it.audio) == len(ref.audio)
        np.testing.assert_allclose(it.audio, ref.audio, atol=1e-4)
