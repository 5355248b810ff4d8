"""Rendering scripts through the engine: cast, batching, timings, loudness, subtitles, the CLI."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from voicegen import synthesize
from voicegen.loudness import integrated_loudness, true_peak_dbtp
from voicegen.podcast import Script
from voicegen.subtitles import parse_srt, parse_vtt
from voicegen.podcast.render import piece_seed, render_script

SCRIPT = """---
Host: jf_alpha
Guest: jm_kumo
---
Host: Welcome to the show. Today we talk about speech.
Guest: Thanks for having me! [pause 0.6s] It is a pleasure.
Host: What got you started?
Guest: Curiosity, mostly.
"""


@pytest.fixture(scope="module")
def episode(engine):
    return render_script(engine, Script.parse(SCRIPT), seed=11)


def test_turns_have_the_right_speakers_voices_and_monotonic_timings(episode):
    assert [s.speaker for s in episode.segments] == ["Host", "Guest", "Host", "Guest"]
    assert [s.voice for s in episode.segments] == ["jf_alpha", "jm_kumo", "jf_alpha", "jm_kumo"]
    ends = 0.0
    for seg in episode.segments:
        assert ends <= seg.start < seg.end <= episode.duration + 1e-6
        ends = seg.end
        assert seg.words, seg.text
        for a, b in zip(seg.words, seg.words[1:]):
            assert seg.start - 1e-6 <= a.start < a.end <= b.start + 1e-6
        assert seg.words[-1].end <= seg.end + 1e-6
    guest = episode.segments[1]
    assert [w.text for w in guest.words[3:5]] == ["me!", "It"]
    inner_pause = guest.words[4].start - guest.words[3].end  # "me!" [pause 0.6s] "It"
    assert inner_pause >= 0.6


def test_episode_loudness_is_broadcast_standard(episode):
    assert integrated_loudness(episode.samples, episode.sample_rate) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_dbtp(episode.samples, episode.sample_rate) <= -1.0 + 0.05


def _median_f0(samples, sr=24000):
    """Median F0 of voiced 40 ms frames by autocorrelation (70-400 Hz)."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    f0s = []
    for start in range(0, len(samples) - frame, hop):
        x = samples[start : start + frame] - samples[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lo, hi = sr // 400, sr // 70
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0s.append(sr / lag)
    return float(np.median(f0s))


def test_male_voice_turns_are_clearly_lower_than_female_voice_turns(episode):
    sr = episode.sample_rate

    def turns(speaker):
        return np.concatenate(
            [episode.samples[int(s.start * sr) : int(s.end * sr)] for s in episode.segments if s.speaker == speaker]
        )

    host, guest = _median_f0(turns("Host")), _median_f0(turns("Guest"))
    assert guest < 0.8 * host, (host, guest)


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_script_renders_its_turns_as_they_render_alone(engine, assert_batch_invariant, monkeypatch, pipelined):
    """render_script renders all pieces of a script together (`_EngineBatches`); each piece it renders equals the
    piece rendered on its own with its speaker's cast voice and its seed (`piece_seed`): catches pieces given the
    wrong voice or seed, or out of order, as well as batch effects. Pipelined (`PIPELINED_WINDOWS`: two halves, the
    second rendered on a thread while the first is mixed, its frontend planned ahead on another) too."""
    from voicegen.podcast import render

    monkeypatch.setitem(render.PIPELINED_WINDOWS, "cpu", pipelined)
    script = Script.parse(SCRIPT)
    rendered, call = [], render._EngineBatches.__call__

    windows = []

    def recording(self, requests, **kwargs):
        out = call(self, requests, **kwargs)
        rendered.extend(out)
        windows.append(len(out))
        return out

    monkeypatch.setattr(render._EngineBatches, "__call__", recording)
    render_script(engine, script, seed=11)
    pieces = [(p, {"Host": "jf_alpha", "Guest": "jm_kumo"}[t.speaker]) for t in script.turns for p in t.pieces if isinstance(p, str)]
    assert len(rendered) == len(pieces)
    assert len(windows) == (2 if pipelined else 1)
    for i, (text, voice) in enumerate(pieces):
        alone = engine.synthesize(text, voice, seed=piece_seed(11, i))
        assert_batch_invariant(rendered[i].samples, alone.samples)


def test_synthesize_renders_scripts_with_a_voice_mapping():
    audio = synthesize("A: Hello there.\nB: Hi!", voices={"A": "jf_nezumi", "B": "jm_kumo"}, seed=1)
    assert [s.voice for s in audio.segments] == ["jf_nezumi", "jm_kumo"]
    with pytest.raises(ValueError, match=r"unknown speaker 'C'.*A, B"):
        synthesize("A: Hello there.\nB: Hi!", voices={"C": "jf_alpha"})
    with pytest.raises(ValueError, match=r"unknown voice 'zz'"):
        synthesize("A: Hello there.\nB: Hi!", voices={"A": "zz"})


def true_peak_16x(data: np.ndarray) -> float:
    """True peak in dBTP by 16x polyphase oversampling (scipy), independent of voicegen's 4x estimator."""
    signal = pytest.importorskip("scipy.signal")
    x = data if data.ndim == 2 else data[:, None]
    up = signal.resample_poly(x, 16, 1, axis=0)
    return float(20 * np.log10(np.abs(up).max()))


def test_cli_podcast_writes_episode_and_subtitles(tmp_path):
    """Also issue 15: loudness and true peak measured on the file the CLI wrote, by pyloudnorm and 16x
    oversampling (catches a limiter or normalizer that only its own 4x estimator believes, and a written file that
    differs from the mixed one); and --progress draws the bar turn by turn (catches the bar that jumped from 0 to
    done for episodes shorter than a render window, ~6 minutes)."""
    pyln = pytest.importorskip("pyloudnorm")
    script = tmp_path / "show.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    out, srt, vtt, js = (tmp_path / n for n in ("show.flac", "show.srt", "show.vtt", "show.json"))
    result = subprocess.run(
        [sys.executable, "-m", "voicegen", "podcast", str(script), "-o", str(out), "--srt", str(srt),
         "--vtt", str(vtt), "--transcript", str(js), "--seed", "3", "--device", "cpu", "--cast", "Guest=jf_tebukuro",
         "--progress"],
        capture_output=True, text=True, timeout=900, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    drawn = re.findall(r"\] (\d+/\d+ turns?),", result.stderr)  # text mode reads each \r redraw as a line
    assert len(set(drawn)) >= 3 and drawn[-1] == "4/4 turns", result.stderr  # one step per turn, not one per window
    data, rate = sf.read(out)
    assert rate == 24000 and len(data) / rate > 5
    assert pyln.Meter(rate).integrated_loudness(data) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_16x(data) <= -1.0 + 0.05  # 0.05 dB: 16-bit rounding and the 4x/16x estimator difference
    duration = len(data) / rate
    for cues in (parse_srt(srt.read_text()), parse_vtt(vtt.read_text())):
        assert cues and all(a.start < a.end <= b.start + 1e-3 for a, b in zip(cues, cues[1:]))
        assert cues[-1].end <= duration + 0.05
    assert "<v Guest>" in vtt.read_text()
    turns = json.loads(js.read_text())["turns"]
    assert [t["speaker"] for t in turns] == ["Host", "Guest", "Host", "Guest"]
    assert turns[1]["voice"] == "jf_tebukuro" and turns[1]["words"]


def test_bad_cast_speed_fails_before_anything_renders(engine, monkeypatch):
    """A cast speed that is valid alone but not times the global speed is refused up front, naming the speaker
    (catches a check that runs only when that speaker's window renders, minutes into an episode)."""
    script = Script.parse("---\nHost: jf_alpha, speed=3\nGuest: jm_kumo\n---\nHost: Hello.\nGuest: Hi there.\n")
    calls = []
    render = engine.renderer.render
    monkeypatch.setattr(engine.renderer, "render", lambda items, *a, **k: calls.append(items) or render(items, *a, **k))
    with pytest.raises(ValueError, match=r"speaker 'Host': cast speed 3 x speed 2 = 6"):
        render_script(engine, script, speed=2.0)
    assert calls == []  # the renderer never saw an item (render_script renders through it, not synthesize_many)
    with pytest.raises(ValueError, match="no turns"):
        render_script(engine, Script(()))


def test_planning_the_next_window_ahead_changes_nothing(engine, monkeypatch):
    """The next window's frontend runs on a thread while the current window renders; the episode is the same bit for
    bit as planning each window when it renders (catches seeds handed out of order, or windows swapped)."""
    from voicegen.podcast import render

    monkeypatch.setattr(render, "WINDOW_CHARS", 40)  # several windows for a short script
    script = Script.parse(SCRIPT)
    ahead = render_script(engine, script, seed=4)
    monkeypatch.setattr(render._EngineBatches, "prepare", None)
    in_turn = render_script(engine, script, seed=4)
    np.testing.assert_array_equal(ahead.samples, in_turn.samples)
    assert [s.text for s in ahead.segments] == [t.spoken_text for t in script.turns]


def test_cli_podcast_without_a_terminal_shows_no_progress_and_counts_one_turn(tmp_path):
    """Issue 15, classes 6 and 7: progress went to stderr even when it was not a terminal, and the summary said
    "1 turns". Catches: a progress bar in a pipe or log, and the plural."""
    script = tmp_path / "one.txt"
    script.write_text("Host: Just one turn.\n", encoding="utf-8")
    out = tmp_path / "one.wav"
    result = subprocess.run([sys.executable, "-m", "voicegen", "podcast", str(script), "-o", str(out), "--seed", "1",
                             "--device", "cpu"], capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    duration = sf.info(str(out)).duration
    assert result.stderr == f"wrote {out} ({duration:.1f} s, 1 turn)\n" and result.stdout == ""


@pytest.mark.parametrize("seed", [1.5, True, "1", np.float64(1.0)])
def test_a_script_seed_is_checked_as_a_text_seed_is(engine, seed, monkeypatch):
    """A float, bool or string seed was truncated or parsed into another seed (piece_seed did int(seed))."""
    monkeypatch.setattr(engine.renderer, "render", lambda items: pytest.fail("rendered with a bad seed"))
    with pytest.raises(ValueError, match="seed must be an integer"):
        render_script(engine, Script.parse("A: Hi."), seed=seed)


def test_automatic_casting_draws_on_the_built_in_voices_not_the_users_files(engine, tmp_path, monkeypatch):
    """User voices sorted before the built-ins ("aaa", a corrupt "broken.voice") were cast to the first speakers,
    and a corrupt file failed a script that never named it. Named in a cast, a user voice still speaks."""
    from voicegen import Engine
    from voicegen.podcast.render import prepare
    from voicegen.weights import Voice

    monkeypatch.setenv("VOICEGEN_DATA", str(tmp_path))
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "broken.voice").write_bytes(b"garbage")
    Voice("aaa", engine.voice_table("jf_alpha") * 0.9).save(tmp_path / "voices" / "aaa.voice")
    mine = Engine(renderer=engine.renderer)
    assert {"aaa", "broken"} <= set(mine.voices)
    audio = render_script(mine, Script.parse("A: Hello.\nB: Hi.\nC: Yes."), seed=0)
    cast = [segment.voice for segment in audio.segments]
    assert set(cast) <= set(mine.voice_bank.builtin_names) and len(set(cast)) == 3, cast
    named = prepare(mine, Script.parse("---\nA: aaa\nB:\n---\nA: Hello.\nB: Hello."))
    assert named.voices(mine.voices, mine.voice_bank.builtin_names)["A"] == "aaa"
