"""BS.1770-4 loudness, true peak and normalization (voicegen.podcast.loudness) and the dsp helpers it uses."""

import math

import numpy as np
import pytest

from voicegen import dsp
from voicegen import loudness as L

SR = 24000


def sine(freq, seconds, sr=SR, amp=1.0, phase=0.0):
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr + phase)


def speechlike(seconds, sr=SR, seed=0):
    """Noise bursts of varying level with syllable-rate envelopes and sharp clicks (crest factor > 15 dB)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2 * (0.3 + 0.7 * rng.random())
    x = rng.standard_normal(n) * 0.05 * env + 0.1 * np.sin(2 * np.pi * 180 * t) * env
    x[rng.integers(0, n, 20)] += 0.9  # plosive-like clicks far above the speech level
    return x


def test_k_weighting_coefficients_match_the_standard_table_at_48k():
    (b1, a1), (b2, a2) = L.k_weighting_filters(48000)
    # ITU-R BS.1770-4, Table 1 (stage 1) and Table 2 (stage 2)
    np.testing.assert_allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-10)
    np.testing.assert_allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(b2, [1.0, -2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(a2, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)


def test_fir_k_weighting_matches_the_iir_cascade():
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(1).standard_normal((SR * 2, 1))
    (b1, a1), (b2, a2) = L.k_weighting_filters(SR)
    ref = signal.lfilter(b2, a2, signal.lfilter(b1, a1, x[:, 0]))
    kw = L._KWeighting(SR, 1)
    ours = np.concatenate([kw(x[:1000]), kw(x[1000:1001]), kw(x[1001:])])[:, 0]  # streamed in uneven pieces
    np.testing.assert_allclose(ours, ref, atol=1e-9)


@pytest.mark.parametrize("sr, tol", [(48000, 0.005), (44100, 0.01), (24000, 0.03)])
def test_997hz_full_scale_sine_in_one_channel_reads_minus_3_01_lufs(sr, tol):
    assert L.integrated_loudness(sine(997, 5, sr), sr) == pytest.approx(-3.01, abs=tol)


def test_loudness_scales_with_level_and_sums_channels():
    x = sine(997, 3, 48000, amp=0.1)
    assert L.integrated_loudness(x, 48000) == pytest.approx(-23.01, abs=0.01)
    stereo = np.stack([x, x], axis=1)
    assert L.integrated_loudness(stereo, 48000) == pytest.approx(-23.01 + 10 * math.log10(2), abs=0.01)


def test_gating_ignores_silence_and_much_quieter_passages():
    tone = sine(1000, 4, amp=0.3)
    ref = L.integrated_loudness(tone, SR)
    # blocks straddling the tone's edges count (they pass the gates), but any amount of silence beyond does not
    short_pause = np.concatenate([np.zeros(SR), tone, np.zeros(SR)])
    long_pause = np.concatenate([np.zeros(SR * 20), tone, np.zeros(SR * 10)])
    assert L.integrated_loudness(long_pause, SR) == pytest.approx(L.integrated_loudness(short_pause, SR), abs=1e-6)
    whisper = sine(1000, 20, amp=0.3 * 10 ** (-25 / 20))  # 25 LU below: removed by the relative gate
    with_whisper = np.concatenate([tone, whisper])
    assert L.integrated_loudness(with_whisper, SR) == pytest.approx(ref, abs=0.2)  # ungated it would be ~-21
    assert L.integrated_loudness(whisper, SR) == pytest.approx(ref - 25, abs=0.05)
    assert L.integrated_loudness(np.zeros(SR * 3), SR) == -math.inf
    assert L.integrated_loudness(tone[: SR // 4], SR) == -math.inf  # shorter than one 400 ms block


def test_meter_fed_in_pieces_equals_one_shot():
    x = speechlike(6)
    meter = L.LoudnessMeter(SR)
    rng = np.random.default_rng(3)
    pos = 0
    while pos < len(x):
        step = int(rng.integers(1, 9000))
        meter.add(x[pos : pos + step])
        pos += step
    assert meter.integrated() == pytest.approx(L.integrated_loudness(x, SR), abs=1e-9)


def test_cross_check_with_pyloudnorm():
    pyln = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(0)
    x = np.stack([speechlike(8, seed=1), rng.standard_normal(SR * 8) * 0.05], axis=1)
    x[: SR * 2] *= 1e-3
    ours = L.integrated_loudness(x, SR)
    try:  # "DeMan" uses the standard's exact filter design, as we do
        exact = pyln.Meter(SR, filter_class="DeMan").integrated_loudness(x)
        assert ours == pytest.approx(exact, abs=1e-3)
    except ValueError:
        pass
    assert ours == pytest.approx(pyln.Meter(SR).integrated_loudness(x), abs=0.15)


def test_true_peak_finds_inter_sample_peaks():
    x = dsp.fade(sine(SR / 4, 1, phase=np.pi / 4), 500, 500)  # samples +-0.707; the wave reaches 1.0 between
    assert np.abs(x).max() == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert L.true_peak_dbtp(x, SR) == pytest.approx(0.0, abs=0.05)
    assert L.true_peak_dbtp(np.zeros(100), SR) == -math.inf
    y = sine(440, 2, amp=0.5)
    assert L.true_peak_dbtp(y, SR) == pytest.approx(20 * math.log10(0.5), abs=0.01)


@pytest.mark.parametrize("level", [0.01, 0.3])
def test_normalize_hits_target_and_true_peak_ceiling(level):
    x = speechlike(20) * level / 0.3
    peak_to_loudness = L.true_peak_dbtp(x, SR) - L.integrated_loudness(x, SR)
    assert peak_to_loudness > 15  # so -16 LUFS is impossible without limiting
    y = L.normalize_loudness(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert L.integrated_loudness(y, SR) == pytest.approx(-16.0, abs=0.5)
    assert abs(L.integrated_loudness(y, SR) + 16.0) < 0.1  # the correction passes do better than the spec
    assert L.true_peak_dbtp(y, SR) <= -1.0 + 0.02


def test_normalize_stereo_and_silence():
    x = np.stack([speechlike(6, seed=2), 0.5 * speechlike(6, seed=3)], axis=1)
    y = L.normalize_loudness(x, SR, target_lufs=-20, true_peak_db=-2)
    assert y.shape == x.shape
    assert L.integrated_loudness(y, SR) == pytest.approx(-20, abs=0.1)
    assert L.true_peak_dbtp(y, SR) <= -2.0 + 0.02
    np.testing.assert_array_equal(L.normalize_loudness(np.zeros(SR), SR), np.zeros(SR))


def test_limiter_output_does_not_depend_on_block_size():
    x = speechlike(5)[:, None]
    gain = 15.0
    whole = np.concatenate(list(L.limited_blocks(x, SR, gain, block=len(x))))
    pieces = np.concatenate(list(L.limited_blocks(x, SR, gain, block=1000)))
    np.testing.assert_allclose(pieces, whole, atol=1e-6)
    assert L.true_peak_dbtp(pieces, SR) <= -1.0 + 0.02


def test_limiter_gain_never_exceeds_what_each_frame_allows():
    x = speechlike(3)[:, None] * 4
    ceiling, half = 0.5, 120
    gain = L._limiter_gain(x, ceiling, half)
    env = L._true_peak_envelope(x)
    assert np.all(gain * env <= ceiling * (1 + 1e-9))
    assert np.all(np.abs(np.diff(gain)) < 0.02)  # smooth: no per-sample gain jumps


def test_resample_is_accurate_for_common_rates():
    for sr_in in (44100, 48000, 22050, 16000, 8000):
        x = sine(1000, 1, sr_in)
        y = dsp.resample(x, sr_in, SR)
        assert len(y) == SR
        ref = sine(1000, 1, SR)
        assert np.abs(y - ref)[500:-500].max() < 1e-3, sr_in


def test_resample_removes_content_above_the_new_nyquist():
    x = sine(15000, 1, 48000)  # aliases to 9 kHz if not filtered
    y = dsp.resample(x, 48000, SR)
    assert np.abs(y[500:-500]).max() < 1e-3


def test_resample_keeps_channels():
    x = np.stack([sine(500, 0.5, 44100), sine(700, 0.5, 44100)], axis=1)
    y = dsp.resample(x, 44100, SR)
    assert y.shape == (SR // 2, 2)
    assert np.abs(y[300:-300, 1] - sine(700, 0.5, SR)[300:-300]).max() < 1e-3


def test_oversample_keeps_original_samples():
    x = np.random.default_rng(0).standard_normal(500)
    np.testing.assert_allclose(dsp.oversample(x, 4)[::4], x, atol=1e-12)


def test_pan_is_constant_power():
    x = np.ones(10, np.float32)
    for p in (-1.0, -0.3, 0.0, 0.7, 1.0):
        s = dsp.pan(x, p)
        np.testing.assert_allclose((s**2).sum(axis=1), 1.0, rtol=1e-6)
    assert dsp.pan(x, -1.0)[0, 1] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="pan"):
        dsp.pan(x, 1.5)


def test_fade_starts_and_ends_near_zero():
    y = dsp.fade(np.ones(1000), 100, 200)
    assert y[0] < 0.001 and y[-1] < 0.001 and y[500] == 1.0
    assert np.all(np.diff(y[:100]) > 0) and np.all(np.diff(y[-200:]) < 0)
    assert np.abs(np.diff(y)).max() < 0.02


def test_panned_meter_equals_metering_each_channel():
    """LoudnessMeter.add_panned filters a panned turn once instead of per channel; this catches it drifting from
    metering the stereo frames themselves (a lost filter state between turns without a gap, a wrong gain
    power), across pieces that cross the meter's internal work blocks, stereo turns and digital silence."""
    rng = np.random.default_rng(0)
    per_channel, panned = L.LoudnessMeter(SR, 2), L.LoudnessMeter(SR, 2)
    for k, n in enumerate([700, 50000, 3, 90000, 20000, 40000]):
        if k == 3:  # a stereo piece (the music path): both meters filter it per channel
            x = rng.standard_normal((n, 2)) * 0.1
            per_channel.add(x)
            panned.add(x)
        elif k == 4:
            per_channel.add(np.zeros((n, 2)))
            panned.add(np.zeros((n, 2)))
        else:
            mono = speechlike(n / SR, seed=k)[:n]
            gains = dsp.pan_gains(rng.uniform(-1, 1))
            per_channel.add(mono[:, None] * gains.astype(np.float64))
            panned.add_panned(mono, gains)
    a, b = per_channel.sub_block_energies(), panned.sub_block_energies()
    assert a.shape == b.shape and len(a) > 20
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert panned.integrated() == pytest.approx(per_channel.integrated(), abs=1e-9)


@pytest.mark.parametrize("level", [0.05, 0.3, 0.8])
def test_peak_map_finds_every_frame_over_a_level(level):
    """The limiter and true_peak compute inter-sample values only where a bound says they could reach the level;
    this catches a bound or a float32 pre-estimate that misses a frame, against the envelope computed everywhere."""
    x = np.stack([speechlike(3, seed=5), speechlike(3, seed=6)], axis=1) * 1.5
    x[1000:1010] = [[0.7, -0.7], [-0.7, 0.7]] * 5  # alternating samples: large inter-sample values
    env = L._true_peak_envelope(x)
    frames, values = L.PeakMap(x, block=4000).over(level)  # small blocks: checks the block seams too
    np.testing.assert_array_equal(frames, np.flatnonzero(env > level))
    np.testing.assert_allclose(values, env[frames], rtol=1e-12)
    assert L.true_peak(x) == pytest.approx(env.max(), rel=1e-12)


def test_gain_search_without_its_cache_gives_the_same_result(monkeypatch):
    """Long loud episodes refilter the loud stretches on every gain pass instead of keeping them (bounded memory);
    this catches the two paths drifting apart."""
    x = np.stack([speechlike(8, seed=7), speechlike(8, seed=8)], axis=1) * 3
    cached = L.normalize_loudness(x, SR)
    monkeypatch.setattr(L.PeakMap, "CACHE_BYTES", 0)
    np.testing.assert_array_equal(L.normalize_loudness(x, SR), cached)
