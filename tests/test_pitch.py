"""Pitch per voice: requests, voice-file defaults, the podcast cast (text and JSON), and casting with variants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voicegen import Request
from voicegen.f0 import estimate_f0
from voicegen.podcast import Script
from voicegen.podcast.render import render_script
from voicegen.podcast.script import CastMember, cast_speakers, cast_voices, voice_variants
from voicegen.weights import Voice, VoiceBank

JA_VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def test_f0_tracker_finds_known_tones():
    """Catches octave errors and off-by-a-lag bias in the YIN tracker the pitch checks rely on."""
    sr = 22050
    t = np.arange(sr) / sr
    for f in (90.0, 180.0, 333.0):
        x = 0.4 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 2 * f * t + 1.0)
        track = estimate_f0(np.stack([x, x], 1), sr)  # stereo is averaged
        assert abs(12 * math.log2(track.median() / f)) < 0.1
        assert track.voiced.mean() > 0.9 and len(track.f0) == 80
    assert not estimate_f0(np.zeros(sr), sr).voiced.any()


@pytest.mark.slow
def test_pitch_moves_median_f0_by_the_semitones_asked_and_keeps_durations(engine):
    """Catches pitch not reaching the network (or reaching it with the wrong sign or scale), and a pitch shift
    that changes durations: the median F0 must move by the requested semitones within 0.5, words keep their
    times exactly."""
    text = "We walked along the river until the sun went down."
    base = engine.synthesize(text, "jf_tebukuro", seed=3)
    f0 = estimate_f0(base.samples, base.sample_rate).median()
    for shift in (-4.0, 3.0):
        moved = engine.synthesize(text, "jf_tebukuro", seed=3, pitch=shift)
        assert len(moved.samples) == len(base.samples)
        assert [(w.start, w.end) for s in moved.segments for w in s.words] == \
               [(w.start, w.end) for s in base.segments for w in s.words]
        measured = 12 * math.log2(estimate_f0(moved.samples, moved.sample_rate).median() / f0)
        assert abs(measured - shift) <= 0.5, (shift, measured)


def test_a_voice_files_pitch_and_speed_are_its_baseline(engine, tmp_path):
    """Catches voice-file defaults ignored by the engine, or replacing (instead of adding to / multiplying) the
    request's own pitch and speed; and out-of-range totals that slip through."""
    table = engine.voice_table("jf_alpha")
    path = str(Voice("low", table, pitch=-3.0, speed=1.25).save(tmp_path / "low.voice"))
    plan = engine.plan(Request("Hello there. How are you?", path, speed=0.8, pitch=1.0, seed=1))
    assert [it.pitch for it in plan.items] == [-2.0, -2.0]
    assert [it.speed for it in plan.items] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert engine.plan(Request("Hello.", "jf_alpha", pitch=2.5)).items[0].pitch == 2.5
    for bad in (13.0, float("nan"), "3"):
        with pytest.raises(ValueError, match="pitch must be a number of semitones from -12 to 12"):
            engine.plan(Request("Hello.", "jf_alpha", pitch=bad))
    with pytest.raises(ValueError, match="pitch must be"):
        engine.plan(Request("Hello.", path, pitch=-10.0))  # -3 of the voice's own: -13


def test_cast_header_and_json_carry_pitch():
    """Catches a parser that drops or refuses `pitch=`, JSON without it, round trips that lose it, and blends or
    voice files refused as cast voices."""
    text = ("---\nHost: jf_alpha, pitch=-3\nGuest: jf_alpha:2+jm_kumo:1, speed=1.1, pitch=2.5\n"
            "Third: voices/host.voice\n---\nHost: Hi.\nGuest: Hello.\nThird: Hey.\n")
    s = Script.parse(text)
    assert s.member("Host") == CastMember("jf_alpha", pitch=-3.0)
    assert s.member("Guest").voice == "jf_alpha:2+jm_kumo:1" and s.member("Guest").pitch == 2.5
    assert s.member("Third").voice == "voices/host.voice"
    assert Script.parse(s.to_text()) == s and Script.from_json(s.to_json()) == s
    j = Script.from_json({"cast": {"A": {"voice": "jm_kumo", "pitch": -1.5}}, "turns": [{"speaker": "A", "text": "x"}]})
    assert j.member("A").pitch == -1.5
    for bad, message in (("---\nA: jf_alpha, pitch=13\n---\nA: x\n", "pitch must be"),
                         ("---\nA: jf_alpha, pitch=low\n---\nA: x\n", "pitch for 'A' must be a number"),
                         ("---\nA: jf_alpha, tone=1\n---\nA: x\n", "use voice, speed, pan or pitch")):
        with pytest.raises(ValueError, match=message):
            Script.parse(bad)


def test_casting_many_speakers_gives_distinct_voices_and_pitches():
    """Catches automatic casting that repeats a voice unchanged while distinct variants remain, that differs from
    the plain casting for the first speakers, or that is not deterministic."""
    speakers = [f"S{i}" for i in range(14)]
    cast = cast_speakers(speakers, JA_VOICES, {"S1": "jm_kumo"})
    assert len(set(cast.values())) == len(speakers)
    plain = cast_voices(speakers[:5], JA_VOICES, {"S1": "jm_kumo"})
    assert {s: cast[s] for s in speakers[:5]} == {s: (v, 0.0) for s, v in plain.items()}
    assert cast == cast_speakers(speakers, JA_VOICES, {"S1": "jm_kumo"})
    bank = VoiceBank(user=False)
    for voice, pitch in cast.values():
        bank.check(voice)  # every blend is a real blend of known voices
        assert -12 <= pitch <= 12
    assert len(voice_variants(JA_VOICES)) == 33
    script = Script.parse("\n".join(f"{s}: Line {i}." for i, s in enumerate(speakers)))
    assert script.casting(JA_VOICES) == cast_speakers(speakers, JA_VOICES)


def test_render_script_sends_each_speakers_pitch_to_the_engine(engine, monkeypatch):
    """Catches pitch lost between the cast and the engine's requests (cast pitch, automatic variant pitch and the
    global pitch must add up)."""
    captured = []
    plan = engine.plan

    def recording_plan(request):
        captured.append(request)
        return plan(request)

    def stop(items):
        raise RuntimeError("stop before rendering")

    monkeypatch.setattr(engine, "plan", recording_plan)  # every request the podcast makes is planned here
    monkeypatch.setattr(engine.renderer, "render", stop)
    speakers = ["A", "B", "C", "D", "E", "F", "G"]
    head = "---\nA: jf_alpha, pitch=-3\n" + "".join(f"{s}:\n" for s in speakers[1:]) + "---\n"
    script = Script.parse(head + "\n".join(f"{s}: Hello from {s}." for s in speakers))
    with pytest.raises(RuntimeError, match="stop before rendering"):
        render_script(engine, script, pitch=1.0)
    casting = script.casting(engine.voices)
    assert [r.pitch for r in captured] == [casting[s][1] + 1.0 for s in speakers]
    assert captured[0].pitch == -2.0 and len(set(casting.values())) == len(speakers)
    assert [r.voice for r in captured] == [casting[s][0] for s in speakers]
    with pytest.raises(ValueError, match="speaker 'A'.*pitch must be"):
        render_script(engine, script, pitch=-10.0)
