"""The frame phase's memory-lean inference paths (in place, sliced) against the plain autograd formulas: what
rendering runs must compute what training-style code would (issue 15: these paths exist to bound peak memory);
and the 2-D form the convolutions take on CUDA against the 1-D convolution they stand for."""

import pytest

import torch

from voicegen.model.layers import AdaIN1d, Conv1d, ConvTranspose1d, _as_2d, masked_instance_norm
from voicegen.model.vocoder.generator import AdaINResBlock1, snake


def _padded(channels=48, frames=300, valid=(300, 211)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(valid), channels, frames, generator=g) * 3 + 1
    mask = (torch.arange(frames)[None, :] < torch.tensor(valid)[:, None]).unsqueeze(1).float()
    return x * mask, mask


def test_snake_in_slices_equals_the_formula_bit_for_bit():
    """Catches a slice left out or done twice (the sliced path writes x in place, SNAKE_SLICES parts)."""
    x, _ = _padded(channels=50)  # not a multiple of the slice count
    alpha = torch.rand(1, 50, 1) + 0.2
    want = x + torch.sin(alpha * x).pow(2) / alpha
    with torch.inference_mode():
        got = snake(x.clone(), alpha)
    assert torch.equal(got, want)


def test_masked_instance_norm_without_autograd_equals_the_formula():
    """Catches wrong statistics in the lean path (variance from the norm, not a squared copy): float rounding
    only, and zero on padding."""
    x, mask = _padded()
    want = masked_instance_norm(x, mask)  # autograd enabled: the plain formula
    with torch.inference_mode():
        got = masked_instance_norm(x, mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not got[1, :, 211:].any()


def test_residual_block_without_autograd_equals_the_formula():
    """The whole lean residual block (in-place sums, sliced snake, lean norms) against its autograd path."""
    torch.manual_seed(0)
    block = AdaINResBlock1(48, 7, (1, 3, 5), 16).eval()
    for p in block.parameters():
        p.data.normal_(0, 0.05)
    x, mask = _padded()
    s = torch.randn(2, 16)
    want = block(x, s, mask).detach()
    with torch.inference_mode():
        got = block(x.clone(), s, mask)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    adain = AdaIN1d(16, 48)
    with torch.inference_mode():
        assert not adain(x, s, mask)[1, :, 211:].any()


def test_generator_without_autograd_equals_the_formula(network):
    """The whole generator's lean path (in-place sums and activations) against its autograd path, on a padded
    batch of two: float rounding only, and silence past the shorter item's end."""
    gen = network.decoder.generator
    g = torch.Generator().manual_seed(0)
    frames = 24
    x = torch.randn(2, 512, frames, generator=g) * 0.1
    s = torch.randn(2, 128, generator=g) * 0.1
    f0 = torch.full((2, frames), 180.0)
    lengths = torch.tensor([frames, frames - 6])
    noise = torch.randn(2, frames * gen.frame_samples, generator=g)
    want = gen(x, s, f0, lengths, noise).detach()
    with torch.inference_mode():
        got = gen(x, s, f0, lengths, noise)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not got[1, (frames - 6) * gen.frame_samples:].any()


@pytest.mark.parametrize("make", [
    lambda: Conv1d(12, 8, 3, padding=1),
    lambda: Conv1d(12, 12, 3, dilation=5, padding=5),
    lambda: Conv1d(12, 8, 4, stride=2, padding=1),  # the generator's strided noise convolutions
    lambda: Conv1d(12, 8, 1, bias=False),
    lambda: ConvTranspose1d(12, 8, 20, 10, padding=5),  # the generator's upsampling
    lambda: ConvTranspose1d(12, 12, 3, stride=2, groups=12, padding=1, output_padding=1),  # depthwise, AdaIN blocks
], ids=["k3", "dilated", "strided", "1x1-no-bias", "transposed", "depthwise-transposed"])
def test_convolution_as_2d_equals_the_1d_convolution(make):
    """What CUDA runs (`_as_2d`, a (B, C, 1, T) convolution) against nn.Conv1d/ConvTranspose1d's own forward, on
    the CPU: a wrong stride, padding, dilation, group or output padding changes the length or the values."""
    torch.manual_seed(0)
    conv = make()
    x = torch.randn(3, 12, 57)
    want = type(conv).__mro__[1].forward(conv, x)
    got = _as_2d(conv, x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_convolution_without_integer_zero_padding_is_refused():
    """`_as_2d` passes integer zero padding on; another padding mode would be silently dropped on CUDA."""
    with pytest.raises(ValueError, match="zero padding"):
        Conv1d(4, 4, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="zero padding"):
        Conv1d(4, 4, 3, padding="same")


def test_bilstm_packs_as_torch_does_bit_for_bit():
    """`BiLSTM` sorts the batch on the host itself (so that CUDA need not synchronize); values and gradients must be
    torch's pack_padded_sequence(enforce_sorted=False) path's, bit for bit, with ties and a full-length row. Catches a
    wrong inverse permutation (rows swapped) or a sort that differs from torch's."""
    from torch import nn

    from voicegen.model.layers import BiLSTM

    torch.manual_seed(0)
    lstm = BiLSTM(20, 16)
    lengths = torch.tensor([9, 4, 13, 4, 1, 9])
    x = torch.randn(6, 13, 20, requires_grad=True)
    ours = lstm(x, lengths)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    theirs = nn.utils.rnn.pad_packed_sequence(nn.LSTM.forward(lstm, packed)[0], batch_first=True, total_length=13)[0]
    assert torch.equal(ours, theirs)
    weights = torch.randn_like(ours)
    grad_ours = torch.autograd.grad((ours * weights).sum(), x)[0]
    grad_theirs = torch.autograd.grad((theirs * weights).sum(), x)[0]
    assert torch.equal(grad_ours, grad_theirs)


@pytest.mark.parametrize("way", ["unpacked", "one_way"])
def test_unpacked_bilstm_equals_the_packed_one_values_and_gradients(way):
    """Catches an unpacked BiLSTM (`voicegen.model.layers.UNPACKED_BILSTM`, or `ONE_WAY_BILSTM`'s two one-way calls)
    whose backward direction reads padding or is not reversed back, whose outputs are shifted by one step or not zero
    on padding, or whose gradients (voice fitting) differ. Five rows: the one-way calls pad them to eight."""
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(0)
    lstm = BiLSTM(20, 16)
    lengths = torch.tensor([13, 7, 1, 12, 5])
    x = torch.randn(5, 13, 20)
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = torch.randn(13 - n, 20) * 5  # padding that must not matter
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    packed, unpacked = lstm(xa, lengths), getattr(lstm, way)(xb, lengths)
    torch.testing.assert_close(unpacked, packed, rtol=1e-5, atol=1e-6)
    assert not unpacked[1, 7:].any() and unpacked[1, 6].abs().sum() > 0
    weights = torch.randn_like(packed)
    (packed * weights).sum().backward()
    (unpacked * weights).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-6)


def test_one_way_bilstms_run_for_inference_and_packed_ones_for_a_gradient(monkeypatch):
    """`ONE_WAY_BILSTM` (CUDA's default, float16) applies to inference only: while autograd records a gradient
    through the BiLSTM (voice fitting), it runs packed in float32, as fitting was measured. Catches fitting moved
    onto the one-way calls, or inference kept off them."""
    from voicegen.model import layers
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(0)
    lstm = BiLSTM(20, 16)
    lengths = torch.tensor([13, 7, 1])
    x = torch.randn(3, 13, 20)
    monkeypatch.setitem(layers.ONE_WAY_BILSTM, "cpu", torch.float32)
    calls = []
    one_way = BiLSTM.one_way
    monkeypatch.setattr(BiLSTM, "one_way", lambda self, *args: calls.append(1) or one_way(self, *args))
    with torch.no_grad():
        lstm(x, lengths)
    assert calls == [1]
    packed = lstm(x.requires_grad_(), lengths)
    assert calls == [1] and packed.grad_fn is not None
    monkeypatch.setitem(layers.ONE_WAY_BILSTM, "cpu", None)
    torch.testing.assert_close(packed, lstm(x, lengths), rtol=0, atol=0)


SWITCHES = [("UNPACKED_BILSTM", True), ("ONE_WAY_BILSTM", torch.float32)]
"""The two ways `BiLSTM` runs without packing (`layers.reads_no_host`), as (switch, value on)."""


@pytest.mark.parametrize("switch, on", SWITCHES)
def test_token_phase_with_unpacked_bilstms_keeps_durations_and_features(network, monkeypatch, switch, on):
    """The network's token phase and alignment (six BiLSTMs) with the switch on, on a batch of three lengths:
    the same durations and, to float rounding, the same frame features."""
    from voicegen.model import layers

    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([40, 23, 9])
    tokens = torch.zeros(3, 40, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        tokens[b, 1 : n - 1] = torch.randint(1, 170, (n - 2,), generator=g)
    style = torch.randn(3, 256, generator=g) * 0.1
    speed = torch.ones(3)

    def run():
        with torch.inference_mode():
            phase = network.encode(tokens, lengths, style, speed)
            return phase, network.align(phase, style)

    phase, frames = run()
    monkeypatch.setitem(getattr(layers, switch), "cpu", on)
    phase2, frames2 = run()
    assert torch.equal(phase2.durations, phase.durations)
    torch.testing.assert_close(frames2.x, frames.x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(frames2.asr, frames.asr, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("switch, on", SWITCHES)
def test_token_encoder_with_padded_rows_and_lengths_as_a_tensor_keeps_every_row(engine, monkeypatch, switch, on):
    """The renderer's graphed token phase (`layers.TOKEN_GRAPHS`, CUDA) runs the encoder on rows padded to a power of
    two, with the lengths as a tensor beside the tokens and the BiLSTMs unpacked. Here the same path runs eagerly on
    the CPU (the graph replaced by the plain call): this catches padding rows that change the batch's own rows, or
    an encoder that still needs its lengths packed, against the unpadded batch."""
    from voicegen.model import layers

    g = torch.Generator().manual_seed(5)
    lengths = torch.tensor([40, 23, 9])  # 3 rows -> 4
    tokens = torch.zeros(3, 64, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        tokens[b, 1 : n - 1] = torch.randint(1, 170, (n - 2,), generator=g)
    style = torch.randn(3, 256, generator=g) * 0.1
    speed = torch.tensor([1.0, 0.8, 1.25])
    renderer, network = engine.renderer, engine.renderer.network
    monkeypatch.setitem(getattr(layers, switch), "cpu", on)
    with torch.inference_mode():
        want = network.encode(tokens, lengths, style, speed)
        calls = []

        def run(*inputs):
            calls.append(inputs)
            return renderer._encode_call(*inputs)

        got = renderer._encode_padded(run, tokens.numpy(), lengths, style, speed)
    (t, n, s, v), = calls
    assert t.shape == (4, 64) and n.tolist() == [40, 23, 9, 2] and not t[3].any()
    assert torch.equal(s[3], s[0]) and v[3] == 1.0
    assert torch.equal(got.durations, want.durations)
    # to float32 rounding (an AMD EPYC's GEMMs round a 4-row batch's rows unlike a 3-row one's: up to 5e-6); a
    # padding row that leaked into the others would move them by percent
    torch.testing.assert_close(got.d, want.d, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.t_en, want.t_en, rtol=1e-4, atol=1e-5)


def test_one_way_bilstm_in_float16_follows_new_weights_and_stays_out_of_the_state_dict():
    """`BiLSTM.one_way` runs on float16 copies of its weights: close to the float32 BiLSTM (float16's rounding, no
    more), made again when the weights change (a copy kept past a load would keep speaking with the old voice of the
    network), and never saved (the state dict keeps Kokoro's names only)."""
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(1)
    lstm, other = BiLSTM(24, 16), BiLSTM(24, 16)
    names = list(lstm.state_dict())
    lengths = torch.tensor([9, 3, 6])
    x = torch.randn(3, 9, 24)
    with torch.inference_mode():
        half = lstm.one_way(x, lengths, torch.float16)
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, lstm(x, lengths), rtol=0, atol=5e-3)
        lstm.load_state_dict(other.state_dict())
        torch.testing.assert_close(lstm.one_way(x, lengths, torch.float16), other(x, lengths), rtol=0, atol=5e-3)
    assert list(lstm.state_dict()) == names


@pytest.mark.parametrize("rows", [1, 3])
def test_the_graphed_token_branch_gives_the_eager_token_phase(engine, monkeypatch, rows):
    """`Renderer._token_phase`'s branch for replayed token graphs (`layers.TOKEN_GRAPHS`, CUDA only) run on the CPU
    with a stand-in graph cache that calls the encoder directly: the durations and frame features of the eager
    branch (to float32 rounding: rows padded to a power of two, the token bucket). Catches a name, shape or padding
    error in that branch, which only a GPU would reach otherwise."""
    from voicegen import Request
    from voicegen.batching import TOKEN_BUCKETS, bucket_for
    from voicegen.model import layers

    renderer = engine.renderer
    texts = ["A short one.", "Something a little longer, with a comma.", "And a third, the last of them."][:rows]
    items = [item for i, text in enumerate(texts) for item in engine.plan(Request(text, seed=i)).items]
    with torch.inference_mode():
        want = renderer._token_phase(items)
    durations = [it.durations.clone() for it in items]

    class StandInGraphs:  # what `voicegen.model.cuda_graphs.GraphCache` offers the token phase
        def captures(self, rows: int, size: int) -> bool:
            calls.append((rows, size))
            return True

        def run(self, *inputs):
            return renderer._encode_call(*inputs)

    calls = []
    monkeypatch.setattr(renderer, "_token_graphs", StandInGraphs())
    monkeypatch.setattr(renderer, "_graphed_tokens", lambda: True)
    monkeypatch.setitem(layers.UNPACKED_BILSTM, "cpu", True)  # a graphed encoder reads its lengths on the device
    with torch.inference_mode():
        got = renderer._token_phase(items)
    bucket = bucket_for(max(len(it.tokens) for it in items) + 2, TOKEN_BUCKETS)
    assert calls == [(1 if rows == 1 else 4, bucket)]  # rows to a power of two, tokens to their bucket
    assert all(torch.equal(it.durations, d) for it, d in zip(items, durations))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_one_way_bilstm_keeps_its_reversal_for_the_same_lengths_only():
    """`BiLSTM.one_way` keeps the reversal index and mask it made from lengths on the host (`layers.reversal`) and
    its zero initial states for the next call. Catches a kept reversal reused for other lengths (the same shape, other
    values; the same tensor changed in place; the same lengths over more steps), and kept states that a call changed:
    each call must equal the packed BiLSTM's answer for its own lengths."""
    from voicegen.model.layers import BiLSTM

    torch.manual_seed(2)
    lstm = BiLSTM(20, 16)
    x = torch.randn(4, 13, 20)
    longer = torch.randn(4, 17, 20)
    lengths = torch.tensor([13, 7, 1, 9])
    calls = [(x, lengths), (x, lengths.clone()), (x, torch.tensor([2, 13, 5, 13])), (longer, lengths), (x, lengths)]
    with torch.inference_mode():
        for steps, n in calls:
            torch.testing.assert_close(lstm.one_way(steps, n), lstm(steps, n), rtol=1e-5, atol=1e-6)
        lengths[1] = 3  # in place: the values, not the tensor, decide
        torch.testing.assert_close(lstm.one_way(x, lengths), lstm(x, lengths), rtol=1e-5, atol=1e-6)


def _albert_inputs():
    torch.manual_seed(3)
    lengths = torch.tensor([21, 9, 2])
    tokens = torch.randint(1, 170, (3, 21)) * (torch.arange(21)[None] < lengths[:, None])
    return tokens, torch.arange(21)[None] < lengths[:, None]


def test_albert_casts_its_weights_once_and_follows_new_ones(monkeypatch):
    """ALBERT's float16 products (`albert.HALF_PRECISION`, CUDA's default) run on weights cast once and kept: a second
    pass casts no parameter (autocast cast all 146 weights and biases on every pass: a kernel each on a GPU), its
    output is the first pass's, and after a load of other weights it is what a fresh ALBERT with those weights gives
    (a kept cast must not outlive the weights it came from). Float32 keeps the stacked query/key/value weights too."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from voicegen.model.acoustic import albert

    tokens, valid = _albert_inputs()
    config = albert.AlbertConfig(num_layers=3)
    model, other = albert.Albert(config).eval(), albert.Albert(config).eval()
    params = {p.data_ptr() for p in model.parameters()}

    class Casts(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in ("_to_copy", "to", "cat") and args:
                first = args[0][0] if isinstance(args[0], (list, tuple)) else args[0]
                Casts.n += isinstance(first, torch.Tensor) and first.data_ptr() in params
            return func(*args, **(kwargs or {}))

    for dtype in (torch.float16, None):
        monkeypatch.setitem(albert.HALF_PRECISION, "cpu", dtype)
        with torch.inference_mode():
            first = model(tokens, valid)
            Casts.n = 0
            with Casts():
                second = model(tokens, valid)
            assert Casts.n == 0, (dtype, Casts.n)
            assert torch.equal(first, second) and first.dtype == torch.float32
            model.load_state_dict(other.state_dict())
            assert torch.equal(model(tokens, valid), other(tokens, valid))
            assert not torch.equal(model(tokens, valid), first)
        model = albert.Albert(config).eval()
        params = {p.data_ptr() for p in model.parameters()}


def test_albert_in_float16_passes_gradients_to_its_weights(monkeypatch):
    """While autograd records (training ALBERT), the float16 products cast the weights on every pass instead of
    keeping them, so that gradients reach every weight; the values are the kept casts' values."""
    from voicegen.model.acoustic import albert

    monkeypatch.setitem(albert.HALF_PRECISION, "cpu", torch.float16)
    tokens, valid = _albert_inputs()
    model = albert.Albert(albert.AlbertConfig(num_layers=2))
    out = model(tokens, valid)
    out[valid].square().sum().backward()  # a sum: float16 gradients of a mean underflow
    layer = model.encoder.albert_layer_groups[0].albert_layers[0]
    for linear in (layer.attention.query, layer.attention.value, layer.attention.dense, layer.ffn_output):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0
    with torch.inference_mode():
        assert torch.equal(model(tokens, valid), out.detach())


@pytest.mark.parametrize("rows", [1, 3])
def test_albert_from_graphs_gives_the_eager_token_phase(engine, monkeypatch, rows):
    """`Renderer._token_phase` with ALBERT replayed from CUDA graphs (`layers.ALBERT_GRAPHS`, CUDA only) run on the
    CPU with a stand-in graph cache that calls ALBERT directly: the eager durations and frame features (to float32
    rounding: the rows are padded to a power of two with rows of two pad tokens) and the shape each batch is
    replayed at. Catches a padding, slicing or input-layout error in that path, which only a GPU would reach
    otherwise."""
    from voicegen import Request
    from voicegen.batching import TOKEN_BUCKETS, bucket_for

    renderer = engine.renderer
    texts = ["A short one.", "Something a little longer, with a comma.", "And a third, the last of them."][:rows]
    items = [item for i, text in enumerate(texts) for item in engine.plan(Request(text, seed=i)).items]
    bucket = bucket_for(max(len(it.tokens) for it in items) + 2, TOKEN_BUCKETS)
    monkeypatch.setattr(renderer, "_token_matrix", lambda batch, graphed=False: type(renderer)._token_matrix(
        renderer, batch, graphed=True))  # bucket padding, as on CUDA
    with torch.inference_mode():
        want = renderer._token_phase(items)
    durations = [it.durations.clone() for it in items]

    class StandInGraphs:  # what `voicegen.model.cuda_graphs.GraphCache` offers
        def captures(self, rows: int, size: int) -> bool:
            return True

        def run(self, tokens, valid):
            calls.append((tuple(tokens.shape), bool(valid[:, :2].all()), tokens.dtype, valid.dtype))
            return renderer.network.bert(tokens, valid)

    calls = []
    monkeypatch.setattr(renderer, "_albert_graphs", StandInGraphs())
    monkeypatch.setattr(renderer, "_albert", lambda: renderer._albert_padded)
    with torch.inference_mode():
        got = renderer._token_phase(items)
    assert calls == [((1 if rows == 1 else 4, bucket), True, torch.int64, torch.bool)]
    assert all(torch.equal(it.durations, d) for it, d in zip(items, durations))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
