"""Batch invariance: an item rendered inside any batch equals the same item rendered alone (the tolerance and
why it is what it is: `assert_batch_invariant` in conftest.py)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicegen.text import VOCAB
from voicegen.weights import style_for

SYMBOLS = sorted(set(VOCAB.values()) - {0})
VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]

item = st.fixed_dictionaries(
    {
        "tokens": st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=30),
        "voice": st.sampled_from(VOICES),
        "speed": st.sampled_from([0.8, 1.0, 1.3]),
        "seed": st.one_of(st.none(), st.integers(0, 2**31)),
    }
)


def _render(engine, voice_tables, items):
    styles = torch.stack([style_for(voice_tables[i["voice"]], len(i["tokens"])) for i in items])
    seeds = [(-1 if i["seed"] is None else i["seed"]) for i in items]
    # render_tokens takes seeds or None for all; -1 marks "no noise" for one item
    return engine.render_tokens([i["tokens"] for i in items], styles, [i["speed"] for i in items], seeds)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known defect (issue 4 note): on strings of random tokens an item in a batch can differ from the item "
    "alone by up to -28 dB RMS, more than rounding explains; real sentences stay within the tolerance (test_api, "
    "test_podcast_render). Kept running so the fix shows up as XPASS.",
    strict=False,
)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(item, min_size=2, max_size=3))
def test_items_in_a_batch_equal_items_alone(engine, voice_tables, assert_batch_invariant, items):
    together = _render(engine, voice_tables, items)
    for it, audio in zip(items, together):
        alone = _render(engine, voice_tables, [it])[0]
        assert_batch_invariant(audio, alone)


def test_same_seed_same_audio_different_seed_different_audio(engine, voice_tables):
    it = {"tokens": [50, 83, 54, 156, 57], "voice": "jf_alpha", "speed": 1.0}
    a, b, c = _render(engine, voice_tables, [dict(it, seed=7), dict(it, seed=7), dict(it, seed=8)])
    np.testing.assert_array_equal(a, b)  # bit for bit, even side by side in one batch
    assert np.abs(a - c).max() > 1e-3
