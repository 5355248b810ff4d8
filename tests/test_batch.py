"""Batch invariance: an item rendered inside any batch equals the same item rendered alone.

Checked in layers, because the network is well conditioned up to its harmonic source and ill conditioned after it:

1. Token phase (ALBERT, duration predictor, text encoder, alignment, shared BiLSTM): durations identical, aligned
   features equal to float32 rounding (relative 1e-4). A padding leak (a norm, conv or LSTM reading past an
   item's end) changes these by whole percent, so this layer is the sharp test of the masks.
2. Frame phase up to the source (pitch and energy predictors): F0 and energy equal to rounding, given the same
   inputs in a padded batch.
3. Audio: equal within the spectral tolerance of `assert_batch_invariant` (conftest.py), which explains why the
   last stage cannot be held to rounding error.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicegen.constants import PAD_ID
from voicegen.model.layers import lengths_to_mask
from voicegen.renderer import Item
from voicegen.text import VOCAB
from voicegen.weights import style_for

SYMBOLS = sorted(set(VOCAB.values()) - {0})
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
ROUNDING = 1e-4  # relative to the tensor's largest magnitude; measured at most 3e-6 (x), 1e-6 (F0) on most items
ROUNDING_FACTOR = 10
"""Degenerate token strings (one symbol repeated) make the BiLSTMs amplify rounding: for tokens [1] * 10 the lone
item's own float32 error (against float64) is 3.8e-5 and batching moves it by 1.4e-4, 3.7x that. So the bound is
ROUNDING or ROUNDING_FACTOR x the item's own float32 rounding error, whichever is larger; a padding leak is
percent-level on any input."""

item = st.fixed_dictionaries(
    {
        "tokens": st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=30),
        "voice": st.sampled_from(VOICES),
        "speed": st.sampled_from([0.8, 1.0, 1.3]),
        "seed": st.one_of(st.none(), st.integers(0, 2**31)),
    }
)
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _style(voice_tables, it):
    return style_for(voice_tables[it["voice"]], len(it["tokens"]))


def _render(renderer, voice_tables, items):
    """Render items as one set of batches; an item whose seed is None gets the source without noise."""
    batch = [Item(i["tokens"], _style(voice_tables, i), i["speed"], i["seed"] or 0, noise=i["seed"] is not None)
             for i in items]
    return [it.audio for it in renderer.render(batch)]


@pytest.fixture(scope="module")
def network64(network):
    import copy

    return copy.deepcopy(network).double()


def _token_phase(network, voice_tables, items, extra_padding=0):
    """Token phase + alignment of a padded batch -> (durations, x, asr, frame lengths), in the network's dtype."""
    lengths = torch.tensor([len(i["tokens"]) + 2 for i in items])
    tokens = torch.full((len(items), int(lengths.max()) + extra_padding), PAD_ID, dtype=torch.long)
    for row, it in enumerate(items):
        tokens[row, 1 : len(it["tokens"]) + 1] = torch.tensor(it["tokens"])
    dtype = next(network.parameters()).dtype
    style = torch.stack([_style(voice_tables, i) for i in items]).to(dtype)
    speed = torch.tensor([i["speed"] for i in items], dtype=dtype)
    phase = network.encode(tokens, lengths, style, speed)
    frames = network.align(phase, style)
    return phase.durations, frames.x, frames.asr, frames.frame_lengths


def _assert_rounding(batched, alone, exact=None):
    """batched == alone up to float32 rounding: ROUNDING relative to the largest magnitude, or ROUNDING_FACTOR x
    the lone item's own error against `exact` (the float64 result), whichever is larger."""
    scale = float(alone.abs().max()) or 1.0
    bound = ROUNDING * scale
    if exact is not None:
        bound = max(bound, ROUNDING_FACTOR * float((alone.double() - exact).abs().max()))
    assert float((batched - alone).abs().max()) <= bound, (float((batched - alone).abs().max()) / scale, bound / scale)


@torch.inference_mode()
@SETTINGS
@given(items=st.lists(item, min_size=2, max_size=4), extra=st.integers(0, 7))
def test_token_phase_in_a_batch_equals_alone_to_rounding(network, network64, voice_tables, items, extra):
    durations, x, asr, frames = _token_phase(network, voice_tables, items, extra)
    for row, it in enumerate(items):
        d1, x1, asr1, f1 = _token_phase(network, voice_tables, [it])
        d64, x64, asr64, _ = _token_phase(network64, voice_tables, [it])
        exact = torch.equal(d64, d1)  # float64 is a reference only where it predicts the same frames
        n, f = len(it["tokens"]) + 2, int(f1[0])
        assert torch.equal(durations[row, :n], d1[0]) and int(frames[row]) == f
        assert not durations[row, n:].any()  # padding gets no frames
        _assert_rounding(x[row, :, :f], x1[0], x64[0] if exact else None)
        _assert_rounding(asr[row, :, :f], asr1[0], asr64[0] if exact else None)
        assert not x[row, :, f:].any() and not asr[row, :, f:].any()  # padded frames are exact zeros


@torch.inference_mode()
@SETTINGS
@given(items=st.lists(item, min_size=2, max_size=4))
def test_pitch_and_energy_in_a_batch_equal_alone_to_rounding(network, voice_tables, items):
    alone = [_token_phase(network, voice_tables, [it]) for it in items]
    lengths = torch.tensor([int(a[3][0]) for a in alone])
    frames = int(lengths.max()) + 3
    x = torch.zeros(len(items), 512, frames)
    for row, a in enumerate(alone):
        x[row, :, : lengths[row]] = a[1][0]
    s = torch.stack([_style(voice_tables, i) for i in items])[:, 128:]
    pitch_energy = network.predictor.pitch_energy
    f0, n = pitch_energy(x, s, lengths_to_mask(lengths, frames), lengths_to_mask(2 * lengths, 2 * frames))
    for row, a in enumerate(alone):
        f = int(lengths[row])
        f0_1, n_1 = pitch_energy(a[1], s[row : row + 1], lengths_to_mask(a[3], f), lengths_to_mask(2 * a[3], 2 * f))
        _assert_rounding(f0[row, : 2 * f], f0_1[0])
        _assert_rounding(n[row, : 2 * f], n_1[0])
        assert not f0[row, 2 * f :].any() and not n[row, 2 * f :].any()


@pytest.mark.slow
@SETTINGS
@given(items=st.lists(item, min_size=2, max_size=3))
def test_audio_in_a_batch_equals_audio_alone(wide_renderer, voice_tables, assert_batch_invariant, items):
    """With a frame budget of 4096 (wide_renderer), items of one frame bucket share a padded frame batch; the
    default CPU budget (200) would render most of them alone (issue 15, class 9)."""
    together = _render(wide_renderer, voice_tables, items)
    for it, audio in zip(items, together):
        alone = _render(wide_renderer, voice_tables, [it])[0]
        assert_batch_invariant(audio, alone)


def test_same_seed_same_audio_different_seed_different_audio(engine, voice_tables, assert_batch_invariant):
    """Side by side in one batch, two items with the same seed sound the same and one with another seed does not.
    Not bit for bit across rows: on an AMD EPYC (AVX-512) a float32 GEMM rounds two identical rows of one batch apart
    (an `nn.Linear` of the style, 4.8e-7; 3e-5 in the audio), so rows are held to batch rounding; README's bit-for-bit
    promise is for the same batch composition again (`test_same_batch_composition_is_bit_for_bit`)."""
    it = {"tokens": [50, 83, 54, 156, 57], "voice": "jf_alpha", "speed": 1.0}
    a, b, c = _render(engine.renderer, voice_tables, [dict(it, seed=7), dict(it, seed=7), dict(it, seed=8)])
    assert_batch_invariant(a, b)
    assert np.abs(a - b).max() < 1e-3 < np.abs(a - c).max()


@pytest.fixture(scope="module")
def wide_renderer(network):
    """A renderer on the session's network with a frame budget large enough to put several items in a batch."""
    from voicegen import Performance
    from voicegen.renderer import Renderer

    renderer = Renderer(network, "cpu", Performance(max_batch_frames=4096))
    yield renderer
    renderer.close()


def test_items_of_different_lengths_share_a_padded_frame_batch_and_render_as_alone(
        wide_renderer, shared_items, render_counted, assert_batch_invariant):
    """Issue 15, class 9: four items of 66-78 frames in ONE frame batch, padded to the longest (asserted from the
    renderer's statistics, so the test cannot silently fall back to items rendering alone), each equal to its lone
    rendering. Catches: padding that leaks into a shorter item in the decoder or generator (instance norms,
    convolutions, the STFTs, the source), which batches of one never exercise."""
    items = shared_items()
    stats = render_counted(wide_renderer, items)
    assert stats["frame_batches"] == 1 and stats["items"] == len(items)
    assert stats["valid_frames"] == sum(int(it.durations.sum()) for it in items) == 283
    assert stats["padded_frames"] == len(items) * 78 > stats["valid_frames"]  # 29 frames of padding
    for it, alone in zip(items, shared_items()):
        wide_renderer.render([alone])
        assert alone.durations.tolist() == it.durations.tolist()
        assert_batch_invariant(it.audio, alone.audio)


def test_static_shapes_on_the_cpu_with_bucket_rows_and_an_empty_row(
        wide_renderer, shared_items, render_counted, assert_batch_invariant):
    """Issue 15, class 9: the static-shape path (what CUDA graphs and static compilation run: frames padded to the
    bucket, rows to a power of two, the extra rows empty) forced on the CPU. Catches: an empty row (zero frames)
    that breaks or poisons the batch, bucket padding that leaks into items, and a plan that is not static."""
    items = shared_items(3)
    exact = shared_items(3)
    wide_renderer.render(exact)  # exact shape: (3, 78)
    wide_renderer.static_shapes = True
    try:
        stats = render_counted(wide_renderer, items)
    finally:
        wide_renderer.static_shapes = False
    assert stats["shapes"] == {(4, 96)}  # 3 items -> 4 rows (one empty), 78 frames -> the 96-frame bucket
    assert stats["frame_batches"] == 1 and stats["padded_frames"] == 4 * 96
    for it, ref in zip(items, exact):
        assert it.durations.tolist() == ref.durations.tolist() and np.isfinite(it.audio).all()
        assert_batch_invariant(it.audio, ref.audio)


def test_same_batch_composition_is_bit_for_bit(wide_renderer, shared_items):
    """README, "Determinism": the same items in the same batch composition give the same samples, bit for bit
    (across batch compositions only within `assert_batch_invariant`'s tolerance). Catches: hidden state between
    calls (an RNG not seeded per item, a cache reused wrongly), which would make even this promise false."""
    first, second = shared_items(), shared_items()
    wide_renderer.render(first)
    wide_renderer.render(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.audio, b.audio)


def test_the_cpu_pads_a_token_batch_to_its_longest_item(wide_renderer, shared_items, monkeypatch):
    """`renderer.EXACT_TOKEN_PADDING`: on the CPU a token batch is padded to its longest item (16 + 2 tokens here),
    not to its token bucket (32), with the same durations and features to rounding. Catches the CPU falling back to
    the buckets (1.5x the token phase's time: benchmarks/RESULTS.md, twelfth session) and padding that changes
    what an item renders."""
    from voicegen import renderer as renderer_module

    widths = []
    encode = wide_renderer.network.encode
    monkeypatch.setattr(wide_renderer.network, "encode", lambda tokens, *a, **k: widths.append(tokens.shape[1]) or
                        encode(tokens, *a, **k))
    runs = {}
    for exact in (True, False):  # the default, then the buckets
        if not exact:
            monkeypatch.setitem(renderer_module.EXACT_TOKEN_PADDING, "cpu", False)
        items = shared_items()
        with torch.inference_mode():
            x, asr = wide_renderer._token_phase(items)
        runs[exact] = [it.durations for it in items], x, asr
    assert widths == [max(len(it.tokens) for it in items) + 2, 32]
    (d_exact, x_exact, asr_exact), (d_bucket, x_bucket, asr_bucket) = runs[True], runs[False]
    assert all(torch.equal(a, b) for a, b in zip(d_exact, d_bucket))
    for a, b in ((x_exact, x_bucket), (asr_exact, asr_bucket)):
        assert float((a - b).norm() / b.norm()) < 1e-4
