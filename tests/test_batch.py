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
from voicegen.layers import lengths_to_mask
from voicegen.text import VOCAB
from voicegen.weights import style_for

SYMBOLS = sorted(set(VOCAB.values()) - {0})
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
ROUNDING = 1e-4  # relative to the tensor's largest magnitude; measured at most 3e-6 (x), 1e-6 (F0)

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


def _render(engine, voice_tables, items):
    styles = torch.stack([_style(voice_tables, i) for i in items])
    seeds = [(-1 if i["seed"] is None else i["seed"]) for i in items]  # -1: no noise for that item
    return engine.render_tokens([i["tokens"] for i in items], styles, [i["speed"] for i in items], seeds)


def _token_phase(network, voice_tables, items, extra_padding=0):
    """Token phase + alignment of a padded batch -> (durations, x, asr, frame lengths)."""
    lengths = torch.tensor([len(i["tokens"]) + 2 for i in items])
    tokens = torch.full((len(items), int(lengths.max()) + extra_padding), PAD_ID, dtype=torch.long)
    for row, it in enumerate(items):
        tokens[row, 1 : len(it["tokens"]) + 1] = torch.tensor(it["tokens"])
    style = torch.stack([_style(voice_tables, i) for i in items])
    speed = torch.tensor([i["speed"] for i in items])
    phase = network.encode(tokens, lengths, style, speed)
    frames = network.align(phase, style)
    return phase.durations, frames.x, frames.asr, frames.frame_lengths


def _assert_rounding(batched, alone):
    scale = float(alone.abs().max()) or 1.0
    assert float((batched - alone).abs().max()) <= ROUNDING * scale, float((batched - alone).abs().max()) / scale


@torch.inference_mode()
@SETTINGS
@given(items=st.lists(item, min_size=2, max_size=4), extra=st.integers(0, 7))
def test_token_phase_in_a_batch_equals_alone_to_rounding(network, voice_tables, items, extra):
    durations, x, asr, frames = _token_phase(network, voice_tables, items, extra)
    for row, it in enumerate(items):
        d1, x1, asr1, f1 = _token_phase(network, voice_tables, [it])
        n, f = len(it["tokens"]) + 2, int(f1[0])
        assert torch.equal(durations[row, :n], d1[0]) and int(frames[row]) == f
        assert not durations[row, n:].any()  # padding gets no frames
        _assert_rounding(x[row, :, :f], x1[0])
        _assert_rounding(asr[row, :, :f], asr1[0])
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
def test_audio_in_a_batch_equals_audio_alone(engine, voice_tables, assert_batch_invariant, items):
    together = _render(engine, voice_tables, items)
    for it, audio in zip(items, together):
        alone = _render(engine, voice_tables, [it])[0]
        assert_batch_invariant(audio, alone)


def test_same_seed_same_audio_different_seed_different_audio(engine, voice_tables):
    it = {"tokens": [50, 83, 54, 156, 57], "voice": "jf_alpha", "speed": 1.0}
    a, b, c = _render(engine, voice_tables, [dict(it, seed=7), dict(it, seed=7), dict(it, seed=8)])
    np.testing.assert_array_equal(a, b)  # bit for bit, even side by side in one batch
    assert np.abs(a - c).max() > 1e-3
