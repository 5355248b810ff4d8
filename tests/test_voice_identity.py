"""A voice name renders that voice, and a blend sounds between its parents (issue 15, class 9).

Judged by voice prints (tests/voiceprint.py: MFCC statistics in plain numpy, sharing no code with the engine):
each voice reads two other sentences than its reference, and must land nearest its own reference. Measured on
this CPU: own distance 7.6-12.8, nearest other voice 21-39, so the margin is wide.
"""

import numpy as np
import pytest

VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
from voicegen import Request
from voiceprint import distance, voiceprint

SENTENCES = ["A large rainbow appeared after the storm had passed.", "Please call me back before noon tomorrow."]


@pytest.fixture(scope="module")
def prints(engine):
    blends = ["jf_alpha+jm_kumo"]
    audios = engine.synthesize_many([Request(s, v, seed=10 + i) for v in VOICES + blends for i, s in enumerate(SENTENCES)])
    n = len(SENTENCES)
    return {v: voiceprint(*[a.samples for a in audios[k * n : (k + 1) * n]]) for k, v in enumerate(VOICES + blends)}


@pytest.mark.slow
def test_each_voice_name_renders_that_voice(prints, voice_references):
    """Catches: a voice name that maps to the wrong table (swapped or shifted names), a voice that is ignored
    (every name sounds the same: all distances collapse), and a style row taken from the wrong voice."""
    for voice in VOICES:
        d = {ref: distance(prints[voice], p) for ref, p in voice_references.items()}
        others = min(v for k, v in d.items() if k != voice)
        assert min(d, key=d.get) == voice and d[voice] < 0.7 * others, (voice, d)


@pytest.mark.slow
def test_a_blend_lies_between_its_parents(prints, voice_references):
    """Catches: a blend that renders one parent only (t near 0 or 1), ignores the weights, or lands far off the
    line between the parents (a wrong mixing formula). Measured: t = 0.73, off-line distance 0.23 x the parents'."""
    a, b = voice_references["jf_alpha"], voice_references["jm_kumo"]
    blend = prints["jf_alpha+jm_kumo"]
    parents = distance(a, b)
    assert distance(blend, a) < parents and distance(blend, b) < parents
    t = float((blend - a) @ (b - a) / ((b - a) @ (b - a)))
    off = float(np.linalg.norm(blend - a - t * (b - a))) / parents
    assert 0.15 < t < 0.85 and off < 0.5, (t, off)
