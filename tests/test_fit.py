"""Fitting voices to recordings: input handling, alignment, the start voice, a short fit, and the independent
speaker judge. The full recovery measurement (several sentences, held-out judging, Whisper) is
benchmarks/voices.py; here the fit runs a few steps on one short clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voicegen.constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from voicegen.fit import FitReport, fit_voice, nearest_voice, prepare_recording
from voicegen.fit.align import dtw_path, frame_features, map_boundaries
from voicegen.weights import Voice, read_voice

CLIP = "Please remember to water the plants."


@pytest.fixture(scope="module")
def kumo_clip(engine):
    """One short sentence spoken by jm_kumo (about 2.5 s)."""
    return engine.synthesize(CLIP, "jm_kumo", seed=7)


def test_recordings_at_any_rate_mono_or_stereo_become_24k_mono():
    """Catches a resampling or channel mix-up (wrong length, channels kept) and silent or too-short input
    accepted."""
    sr = 44100
    t = np.arange(int(1.5 * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    for audio in (tone, np.stack([tone, tone], 1), np.stack([tone, tone], 0)):
        out = prepare_recording(audio.astype(np.float32), sr)
        assert out.ndim == 1 and abs(len(out) - 1.5 * SAMPLE_RATE) <= 1
        assert np.sqrt(np.mean(out**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    with pytest.raises(ValueError, match="0.5 to 300 s"):
        prepare_recording(tone[:1000], sr)
    with pytest.raises(ValueError, match="silent"):
        prepare_recording(np.zeros(sr), sr)


def test_dtw_recovers_a_known_time_warp():
    """Catches a DTW whose path is not monotonic, misses the corners, or does not follow the warp."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 5))
    warp = np.sort(np.concatenate([np.arange(60), np.arange(0, 60, 3)]))  # b repeats every third frame of a
    b = a[warp] + rng.normal(scale=0.01, size=(len(warp), 5))
    path = dtw_path(a, b)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (59, len(warp) - 1)
    assert (np.diff(path, axis=0) >= 0).all() and (np.diff(path, axis=0).sum(1) >= 1).all()
    assert all(warp[j] == i for i, j in path)
    starts = map_boundaries(path, np.array([0, 30, 60]))
    assert list(starts) == [0, int(np.searchsorted(warp, 30)), len(warp)]


def test_frame_features_line_up_with_network_frames(kumo_clip):
    """Catches features at another rate than the network's 40 Hz frames (the alignment would be off by a
    factor)."""
    feats = frame_features(kumo_clip.samples)
    assert feats.shape == (-(-len(kumo_clip.samples) // SAMPLES_PER_FRAME), 20)
    assert np.abs(feats.mean(0)).max() < 1e-4  # mean-normalized


@pytest.mark.slow
def test_the_start_is_the_nearest_builtin_voice(engine, kumo_clip):
    """Catches a start-voice score that does not follow the speaker: a clip of jm_kumo must be nearest to
    jm_kumo among the built-in voices."""
    chunks = engine.frontend(CLIP)
    scores = nearest_voice(engine, kumo_clip.samples, chunks, engine.voice_bank.builtin_names)
    assert min(scores, key=scores.get) == "jm_kumo", scores


@pytest.mark.slow
def test_starting_at_the_answer_leaves_nothing_to_correct(engine, kumo_clip):
    """Zero steps from the true voice. Catches a bias between the recording's F0 track and the network's F0, or
    between aligned and predicted durations, which would give every fitted voice a spurious pitch or speed."""
    voice = fit_voice(kumo_clip.samples, SAMPLE_RATE, CLIP, start="jm_kumo", steps=0, engine=engine)
    assert (voice.pitch, voice.speed) == (0.0, 1.0), (voice.pitch, voice.speed)
    assert torch.equal(voice.table, engine.voice_table("jm_kumo"))


@pytest.mark.slow
def test_a_short_fit_lowers_its_loss_and_writes_a_voice(engine, kumo_clip, tmp_path):
    """A few steps on a 2.5 s clip (CI budget). Catches a fit whose gradient does not reach the style (loss
    flat), one that changes the network's own weights, and a result that is not a loadable voice with its
    provenance."""
    before = {k: v.clone() for k, v in engine.renderer.network.state_dict().items()}
    stereo_48k = np.repeat(kumo_clip.samples[:, None], 2, 1)
    from voicegen.dsp import resample

    stereo_48k = resample(stereo_48k, SAMPLE_RATE, 48000)
    report: list[FitReport] = []
    steps = []
    voice = fit_voice(stereo_48k, 48000, CLIP, name="kumo-fit", start="jf_alpha", steps=4, engine=engine, realign=False,
                      report=report, progress=lambda s, n, loss: steps.append((s, n, loss)))
    assert [s for s, _, _ in steps] == [1, 2, 3, 4]
    losses = [entry["loss"] for entry in report[0].losses]
    # the gradient reaches the style: some step lowers the loss (not necessarily the last: four steps of Adam may
    # overshoot, as on an AMD EPYC, 5.840 -> 5.811 -> 5.876; the fit keeps its best pass, tested below)
    assert min(losses[1:]) < losses[0], losses
    assert report[0].start == "jf_alpha"
    assert isinstance(voice, Voice) and voice.name == "kumo-fit"
    assert not np.allclose(voice.table.numpy(), engine.voice_table("jf_alpha").numpy())
    info = voice.provenance
    assert info["method"] == "fit" and info["start"] == "jf_alpha" and info["steps"] == 4
    assert info["text"] == CLIP and info["transcript"] == "given"
    after = engine.renderer.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    path = voice.save(tmp_path / "kumo.voice")
    assert read_voice(path).table.numpy().tobytes() == voice.table.numpy().tobytes()
    audio = engine.synthesize("A new sentence in the fitted voice.", str(path), seed=1)
    assert audio.duration > 1.0 and np.abs(audio.samples).max() > 0.05


def test_the_fit_returns_its_best_pass_not_its_last(engine, kumo_clip, monkeypatch):
    """The objective is replaced by a quadratic bowl that Adam's large step overshoots, so the loss falls and then
    rises again. Catches returning the last parameters (the fitted voice then renders worse than one it already had)
    instead of those after the pass with the lowest mean loss."""
    from voicegen.fit import fitting

    centre = engine.voice_table("jm_kumo").float()
    real = fitting._forward

    def bowl(network, target, group, table, noise, weights, device, with_audio=True):  # the loss only: exact, cheap
        if not with_audio:  # the pitch/speed defaults after the fit still come from the network
            return real(network, target, group, table, noise, weights, device, with_audio=False)
        return ((table - centre) ** 2).mean() * 1e3, {}, None

    monkeypatch.setattr(fitting, "_forward", bowl)
    report: list[FitReport] = []
    voice = fit_voice(kumo_clip.samples, SAMPLE_RATE, CLIP, start="jf_alpha", steps=12, lr=3.0, offset_lr=0.3,
                      patience=100, engine=engine, realign=False, report=report)
    losses = [entry["loss"] for entry in report[0].losses]
    assert len(fitting._batch_groups(report[0].target, 8.0)) == 1  # one group: each step is a whole pass
    kept = report[0].kept_step
    assert kept == int(np.argmin(losses)) and voice.provenance["kept_step"] == kept
    assert losses[-1] > 2 * min(losses), losses  # the loss did rise again: the case is real
    kept_loss = float(bowl(None, None, None, voice.table.float(), None, None, None)[0])
    assert kept_loss == pytest.approx(min(losses), rel=1e-4)


def test_the_fit_does_not_stop_before_its_realignment(engine, kumo_clip, monkeypatch):
    """A loss that never falls (a constant stand-in) would stop the fit after `patience` steps; the realignment
    (a third of the steps) must come first, since losses against the start voice's alignment say little (the
    blend target of benchmarks/voices.py stopped at step 10 of 40, before it, and was not recovered)."""
    from voicegen.fit import fitting

    real = fitting._forward
    aligned = []
    real_align = fitting.align_recording

    def flat(network, target, group, table, noise, weights, device, with_audio=True):
        if not with_audio:
            return real(network, target, group, table, noise, weights, device, with_audio=False)
        return table.sum() * 0.0 + 1.0, {}, None

    def counted(*args, **kwargs):
        aligned.append(True)
        return real_align(*args, **kwargs)

    monkeypatch.setattr(fitting, "_forward", flat)
    monkeypatch.setattr(fitting, "align_recording", counted)
    report: list[FitReport] = []
    fit_voice(kumo_clip.samples, SAMPLE_RATE, CLIP, start="jf_alpha", steps=12, patience=2, engine=engine,
              report=report)
    assert report[0].stopped_early and len(aligned) == 2  # the start's alignment, then the realignment at step 4
    assert 12 // 3 < len(report[0].losses) < 12  # stopped early, but after the realignment


@pytest.mark.slow
def test_the_speaker_judge_tells_voices_apart(engine):
    """Catches a judge that is not a speaker embedding (or preprocessing that breaks it): two sentences of one
    voice must be more alike than the same sentence in two voices."""
    pytest.importorskip("resemblyzer")
    from voicegen.eval.speaker import SpeakerJudge

    judge = SpeakerJudge()
    one = engine.synthesize("The kettle started whistling in the hallway.", "jf_alpha", seed=1).samples
    two = engine.synthesize("Our neighbors planted a row of sunflowers.", "jf_alpha", seed=2).samples
    other = engine.synthesize("Our neighbors planted a row of sunflowers.", "jm_kumo", seed=2).samples
    same = judge.similarity(one, two)
    different = judge.similarity(two, other)
    # the margin is the property; the floor only catches a degenerate embedding (measured: 0.84 vs 0.44 with the
    # seeds-based source noise of issue 11; 3 s clips)
    assert same > 0.75 and same > different + 0.2, (same, different)
    from voicegen.dsp import resample
    from voicegen.eval.speaker import cosine

    at_16k = judge.embed(resample(one, SAMPLE_RATE, 16000), 16000)
    assert cosine(at_16k, judge.embed(one, SAMPLE_RATE)) > 0.98  # the rate it is given does not matter


def test_the_searched_parameters_live_on_the_tables_device():
    """Fitting on a GPU: a and delta made on the CPU beside tables on the device failed in the first step (H200,
    2026-11-26). The meta device stands in for CUDA here."""
    from voicegen.fit.fitting import StyleSearch

    search = StyleSearch(torch.zeros(510, 256, device="meta"), torch.zeros(3, 510, 256, device="meta"))
    assert {p.device.type for p in search.parameters()} == {"meta"}
    assert search.table().shape == (510, 256)


def test_lstms_train_during_the_style_gradient_and_are_restored(engine):
    """cuDNN's RNN has no backward in eval mode (the second failure on the H200): the fit runs the network's LSTMs
    in training mode while the gradient flows, gives the same output (one layer, no dropout) and leaves the
    shared engine's network in eval mode afterwards."""
    from voicegen.fit.fitting import _rnn_backward

    network = engine.renderer.network
    lstms = [m for m in network.modules() if isinstance(m, torch.nn.LSTM)]
    assert lstms and not any(m.training for m in lstms)
    lstm = lstms[0]
    x = torch.randn(1, 7, lstm.input_size)
    with torch.inference_mode():
        before = torch.nn.LSTM.forward(lstm, x)[0]
        with _rnn_backward(network):
            assert all(m.training for m in lstms)
            inside = torch.nn.LSTM.forward(lstm, x)[0]
    assert not any(m.training for m in lstms)
    assert torch.equal(before, inside)
