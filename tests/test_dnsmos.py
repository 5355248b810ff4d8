"""DNSMOS, the second quality judge (voicegen.eval.dnsmos): wiring, windowing and that it can tell worse audio."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("speechmos")

from voicegen.eval import dnsmos as D  # noqa: E402


def test_windows_follow_the_reference_script():
    """Catches windowing that drifts from the published DNSMOS script (its scores would then not compare): short
    clips are doubled until one 9.01 s window fits; long ones get one window per second, minus the windows the
    script's float rounding makes one sample short (7, not 12, for this 21.15 s clip)."""
    short = np.arange(5 * D.DNSMOS_SAMPLE_RATE, dtype=np.float32)  # doubled to 10 s: one window
    w = D._windows(short)
    assert w.shape == (1, 144160)
    np.testing.assert_array_equal(w[0, : len(short)], short)  # the clip, then its copies
    np.testing.assert_array_equal(w[0, len(short) :], short[: 144160 - len(short)])
    long = np.zeros(int(21.15 * D.DNSMOS_SAMPLE_RATE), np.float32)
    assert len(D._windows(long)) == 7
    with pytest.raises(ValueError, match="empty"):
        D._windows(np.zeros(0, np.float32))


def test_dnsmos_prefers_clean_speech_to_the_same_speech_in_noise(engine):
    """Catches a judge that is wired wrong (wrong rate, scale or output order, or polynomials applied to the
    wrong score): clean speech must score in the normal MOS range and above the same speech at 5 dB SNR, and
    above all for background noise (BAK)."""
    judge = D.Dnsmos()
    speech = engine.synthesize("The quality judge listens to this sentence twice.", seed=0).samples
    clean = judge(speech, 24000)
    noise = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (5 / 10))
    noisy = judge(np.clip(speech + noise, -1, 1), 24000)
    assert 2.5 < clean.overall < 4.5 and 1.0 <= noisy.overall <= 5.0
    assert clean.overall > noisy.overall + 0.5
    assert clean.background > noisy.background + 1.0
    stereo = judge(np.stack([speech, speech], axis=1), 24000)  # (N, 2): averaged to mono, same score
    assert stereo.overall == pytest.approx(clean.overall, abs=1e-6)
    assert judge.mean([speech, speech], 24000).overall == pytest.approx(clean.overall, abs=1e-6)
