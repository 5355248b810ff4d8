"""Mixing turns into an episode (voicegen.podcast.mix): gaps, fades, pan, intro/outro, loudness, atomic files."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicegen.audio import Audio, Segment, Word
from voicegen.constants import SAMPLE_RATE as SR
from voicegen import loudness as L
from voicegen.podcast import mix
from voicegen.podcast.mix import EpisodeWriter, Gaps, RenderedTurn, join_pieces, mix_turns
from voicegen.podcast.render import mix_script
from voicegen.podcast.script import Pause, Script


def fake_speech(text: str, seconds: float | None = None, amp: float = 0.3, seed: int = 0,
                noise: float = 0.02, click: float = 1.2) -> Audio:
    """A stand-in for the model: a 110 Hz tone that starts and ends at full amplitude (so an unfaded join
    would click), with a loud click in the middle (so the limiter has work), and evenly spaced words."""
    words = text.split()
    seconds = seconds or 0.25 * len(words) + 0.2
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = amp * np.cos(2 * np.pi * 110 * t) + noise * np.random.default_rng(seed).standard_normal(n)
    x[n // 2] += click
    step = seconds / max(1, len(words))
    timed = tuple(Word(w, i * step, (i + 0.8) * step) for i, w in enumerate(words))
    return Audio(x.astype(np.float32), SR, [Segment(text, 0.0, seconds, words=timed)])


def synthesize(text: str, voice: str, speed: float) -> Audio:
    return fake_speech(text, seed=len(text))


TURNS = [
    ("Host", "Welcome back to the show, today we talk about speech synthesis."),
    ("Guest", "Thanks for having me."),
    ("Host", "So how does it work?"),
    ("Guest", "First the text is turned into phonemes, then a network predicts durations and pitch."),
    ("Guest", "After that a decoder makes the waveform."),
]


def rendered(pans=None):
    return [RenderedTurn(fake_speech(text, seed=i), speaker=s, text=text, pan=(pans or {}).get(s))
            for i, (s, text) in enumerate(TURNS)]


def max_jump(x, at, radius=12):
    """Largest sample-to-sample step within `radius` frames of frame index `at`."""
    lo, hi = max(0, at - radius), min(len(x), at + radius)
    return float(np.abs(np.diff(x[lo:hi], axis=0)).max())


def test_gaps_follow_the_rules():
    g = Gaps()
    assert g.between("A", "A long enough statement about things.", "B", "Another long statement here.") == 0.45
    assert g.between("A", "A long enough statement about things.", "A", "Another long statement here.") == 0.35
    assert g.between("A", "Is this a long enough question, really?", "B", "Another long statement here.") == 0.25
    assert g.between("A", "A long enough statement about things.", "B", "Yes.") == 0.25  # quick reply
    assert g.between("A", "Sure.", "B", "Another long statement here, and more.") == 0.25  # after a quick reply
    assert g.between("A", "本当ですか？", "B", "はい、そうです。本当にそうなんです。とても長い答えです。") == 0.25


def test_mix_turns_places_turns_with_natural_gaps_and_word_times():
    audio = mix_turns(rendered(), normalize=False, trim_silence=False)
    segs = audio.segments
    assert [s.speaker for s in segs] == [s for s, _ in TURNS]
    assert segs[0].start == 0.0
    gaps = Gaps()
    for prev, cur, (ps, pt), (cs, ct) in zip(segs, segs[1:], TURNS, TURNS[1:]):
        assert cur.start - prev.end == pytest.approx(gaps.between(ps, pt, cs, ct), abs=1.5 / SR)
    assert segs[-1].end == pytest.approx(audio.duration, abs=1 / SR)
    for seg, (_, text) in zip(segs, TURNS):
        assert [w.text for w in seg.words] == text.split()
        starts = [w.start for w in seg.words]
        assert starts == sorted(starts) and seg.start <= starts[0] and seg.words[-1].end <= seg.end
    # the question gets the short gap, the same-speaker continuation a shorter one than a speaker change
    assert segs[3].start - segs[2].end == pytest.approx(0.25, abs=1e-3)
    assert segs[4].start - segs[3].end == pytest.approx(0.35, abs=1e-3)


def test_joins_never_click():
    pure = [RenderedTurn(fake_speech(text, noise=0.0, click=0.0), speaker=s, text=text) for s, text in TURNS]
    audio = mix_turns(pure, normalize=False, trim_silence=False)
    x = audio.samples
    interior = max_jump(x, int(0.5 * SR), radius=2000)  # steps inside the first turn's tone
    for seg in audio.segments:
        for t in (seg.start, seg.end):
            assert max_jump(x, int(round(t * SR))) <= 1.5 * interior + 1e-3, t
    # without fades the jump at a join would be the tone's full amplitude
    assert 0.3 > 20 * interior


def test_episode_is_normalized_with_true_peak_ceiling():
    raw = mix_turns(rendered(), normalize=False).samples  # normalize=False still clips to [-1, 1]
    assert L.true_peak_dbtp(raw, SR) - L.integrated_loudness(raw, SR) > 15  # so the limiter has to act
    audio = mix_turns(rendered())
    assert audio.sample_rate == SR and audio.samples.ndim == 1
    assert L.integrated_loudness(audio.samples, SR) == pytest.approx(-16.0, abs=0.5)
    assert L.true_peak_dbtp(audio.samples, SR) <= -1.0 + 0.02
    quiet = mix_turns(rendered(), target_lufs=-24.0, true_peak_db=-3.0)
    assert L.integrated_loudness(quiet.samples, SR) == pytest.approx(-24.0, abs=0.5)
    assert L.true_peak_dbtp(quiet.samples, SR) <= -3.0 + 0.02


def test_stereo_pan_places_speakers():
    turns = [RenderedTurn(fake_speech(text, click=0.0), speaker=s, text=text, pan={"Host": -1.0, "Guest": 0.5}[s])
             for s, text in TURNS]
    audio = mix_turns(turns, normalize=False)
    assert audio.samples.shape[1] == 2
    host, guest = audio.segments[0], audio.segments[1]
    h = audio.samples[int(host.start * SR) : int(host.end * SR)]
    assert np.abs(h[:, 1]).max() < 1e-6 and np.abs(h[:, 0]).max() > 0.1  # hard left
    g = audio.samples[int(guest.start * SR) : int(guest.end * SR)]
    theta = 1.5 * math.pi / 4
    assert np.sqrt((g[:, 1] ** 2).sum() / (g[:, 0] ** 2).sum()) == pytest.approx(math.tan(theta), rel=1e-3)
    with pytest.raises(ValueError, match="stereo"):
        EpisodeWriter(None).add_turn(np.zeros(10), speaker="Host", pan=0.3)


def test_trimming_removes_edge_silence_and_keeps_words_aligned():
    a = fake_speech("one two three four", seconds=1.0)
    padded = Audio(np.concatenate([np.zeros(SR), a.samples, np.zeros(SR)]), SR,
                   [Segment(a.segments[0].text, 1.0, 2.0, words=tuple(Word(w.text, w.start + 1, w.end + 1)
                                                                    for w in a.segments[0].words))])
    audio = mix_turns([RenderedTurn(padded, speaker="A", text="one two three four")], normalize=False)
    seg = audio.segments[0]
    assert seg.end - seg.start == pytest.approx(1.0 + 2 * mix.TRIM_KEEP_S, abs=2 / SR)
    assert seg.words[0].start == pytest.approx(mix.TRIM_KEEP_S, abs=2 / SR)


def test_join_pieces_inserts_pauses_and_shifts_words():
    a, b = fake_speech("hello there"), fake_speech("general idea")
    joined = join_pieces([a, Pause(1.0), b])
    assert joined.duration == pytest.approx(a.duration + 1.0 + b.duration, abs=1 / SR)
    gap = joined.samples[int(a.duration * SR) + 1 : int((a.duration + 1.0) * SR) - 1]
    assert np.abs(gap).max() == 0.0
    assert joined.segments[1].words[0].start == pytest.approx(a.duration + 1.0, abs=1 / SR)
    assert abs(joined.samples[0]) < 0.01 and abs(joined.samples[-1]) < 0.01  # faded


def test_render_script_casts_voices_and_renders_pauses():
    script = Script.parse("---\nHost: jf_alpha, pan=-0.3\nGuest: pan=0.3\n---\n"
                          "Host: Welcome! [pause 1.5s] Today we talk about voices.\nGuest: Thanks for having me.\n")
    calls = []

    def synth_many(requests):
        calls.append([(text, voice) for text, voice, _, _ in requests])
        return [synthesize(text, voice, speed) for text, voice, speed, _ in requests]

    audio = mix_script(script, synth_many, voices=["jf_alpha", "jf_tebukuro", "jm_kumo"])
    assert calls == [[("Welcome!", "jf_alpha"), ("Today we talk about voices.", "jf_alpha"),
                      ("Thanks for having me.", "jm_kumo")]]  # one batch for the whole (short) script
    assert audio.samples.ndim == 2  # the cast pans, so the episode is stereo
    host, guest = audio.segments
    assert host.text == "Welcome! Today we talk about voices." and host.voice == "jf_alpha"
    assert guest.voice == "jm_kumo"
    assert host.end - host.start > 1.5 + 2 * 0.25  # the pause is inside the turn
    words = [w.text for w in host.words]
    assert words == ["Welcome!", "Today", "we", "talk", "about", "voices."]
    pause = host.words[1].start - host.words[0].end
    assert pause >= 1.5


def test_a_turn_of_nothing_but_a_pause_is_that_pause_once():
    def gap_after_first_turn(text: str) -> float:
        audio = mix_script(Script.parse(text), lambda requests: [synthesize(t, v, s) for t, v, s, _ in requests],
                           voices=["jf_alpha", "jm_kumo"])
        first, second = audio.segments
        return second.start - first.end

    alone = gap_after_first_turn("Host: Hi there.\nGuest: [pause 3s]\nHost: Bye now.")
    at_the_end = gap_after_first_turn("Host: Hi there. [pause 3s]\nGuest: Bye now.")
    assert 3.0 <= alone < 3.0 + 0.6 and alone == pytest.approx(at_the_end, abs=0.3)  # 6.25 s when counted twice


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".opus", ".mp3"])
def test_episode_writer_file_matches_in_memory_mix(tmp_path, ext, monkeypatch):
    monkeypatch.setattr(L, "BLOCK_FRAMES", 5000)  # many blocks: checks the block seams of the second pass
    monkeypatch.setattr(mix.loudness, "BLOCK_FRAMES", 5000)
    out = tmp_path / f"episode{ext}"
    try:
        mix.audio_format(out)
    except ValueError as e:
        pytest.skip(str(e))
    with EpisodeWriter(out) as ep:
        for t in rendered():
            ep.add_turn(t.audio, speaker=t.speaker, text=t.text)
    assert files_in(tmp_path) == [out.name]  # temporary files are gone
    memory = mix_turns(rendered())
    assert ep.segments == memory.segments
    data, sr = sf.read(out, dtype="float32")
    assert sr == SR and abs(len(data) - len(memory.samples)) <= (0 if ext in (".wav", ".flac") else SR // 10)
    if ext in (".wav", ".flac"):  # lossless: equal up to 16-bit quantization
        np.testing.assert_allclose(data, memory.samples, atol=1.5 / 32768)
    assert L.integrated_loudness(data, SR) == pytest.approx(-16.0, abs=0.5)


def test_intro_and_outro_any_rate_and_layout(tmp_path):
    intro = tmp_path / "intro.wav"
    sf.write(intro, np.full((44100, 2), 0.2, np.float32), 44100)  # 1 s stereo at 44.1 kHz
    outro = Audio(np.full(8000, 0.1, np.float32), 16000)  # 0.5 s mono at 16 kHz
    audio = mix_turns(rendered(), intro=intro, outro=outro, normalize=False, stereo=True)
    first = audio.segments[0]
    assert first.start == pytest.approx(1.0 + Gaps().music, abs=2 / SR)
    assert audio.duration == pytest.approx(audio.segments[-1].end + Gaps().music + 0.5, abs=3 / SR)
    assert audio.samples.shape[1] == 2
    with pytest.raises(ValueError, match="cannot read"):
        mix_turns(rendered(), intro=tmp_path / "missing.wav")


def test_exception_inside_the_block_leaves_nothing(tmp_path):
    out = tmp_path / "ep.wav"
    with pytest.raises(RuntimeError):
        with EpisodeWriter(out) as ep:
            ep.add_turn(fake_speech("some words here").samples, speaker="A")
            raise RuntimeError("model crashed")
    assert files_in(tmp_path) == []


def test_interrupt_while_finishing_leaves_nothing(tmp_path, monkeypatch):
    real = L.limited_blocks

    def interrupted(*args, **kwargs):
        gen = real(*args, **kwargs)
        yield next(gen)
        raise KeyboardInterrupt

    monkeypatch.setattr(mix.loudness, "limited_blocks", interrupted)
    monkeypatch.setattr(mix.loudness, "BLOCK_FRAMES", 5000)
    out = tmp_path / "ep.flac"
    with pytest.raises(KeyboardInterrupt):
        with EpisodeWriter(out) as ep:
            for t in rendered():
                ep.add_turn(t.audio, speaker=t.speaker, text=t.text)
    assert files_in(tmp_path) == []


def test_unsupported_format_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"\.xyz"):
        EpisodeWriter(tmp_path / "ep.xyz")
    try:
        EpisodeWriter(tmp_path / "ep.mp3")
    except ValueError as e:  # libsndfile without MP3: a clear message
        assert "mp3" in str(e)
    assert files_in(tmp_path) == []


def test_silence_only_and_empty_episodes():
    writer = EpisodeWriter(None)
    with writer:
        writer.add_silence(0.5)
    assert writer.audio.duration == pytest.approx(0.5)
    assert np.all(writer.audio.samples == 0)
    assert mix_turns([]).duration == 0.0


PIPELINE_SCRIPT = ("---\nHost: jf_alpha, pan=-0.3\nGuest: pan=0.3\n---\n"
                   "Host: Welcome back! [pause 0.5s] Today we talk about voices.\nGuest: Thanks for having me.\n"
                   "Host: How did it start?\nGuest: With a tape recorder, years ago.\nHost: And then?\n"
                   "Guest: [pause 1s]\nHost: Then came the computers, I suppose.\nGuest: They did, yes.\n")


@pytest.mark.parametrize("window_chars", [10_000, 60])  # one window (pipelined: two halves), several windows
def test_a_pipelined_script_is_the_serial_one_bit_for_bit(monkeypatch, window_chars):
    """`feed_script(pipeline=True)` (`PIPELINED_WINDOWS`): the next window renders on a thread while this one is
    mixed, and a one-window script renders in two halves; with a synthesizer whose audio depends only on each request,
    the episode equals the serial one sample for sample, and the requests are the same, in the same order. Catches a
    window mixed twice or skipped, turns taken from the wrong window, or a seed order changed by the thread."""
    from voicegen.podcast import render

    monkeypatch.setattr(render, "WINDOW_CHARS", window_chars)
    script = Script.parse(PIPELINE_SCRIPT)
    runs = {}
    for pipeline in (False, True):
        calls = []

        def synth_many(requests, calls=calls):
            calls.append([text for text, _, _, _ in requests])
            return [synthesize(text, voice, speed) for text, voice, speed, _ in requests]

        audio = mix_script(script, synth_many, voices=["jf_alpha", "jm_kumo"], pipeline=pipeline)
        runs[pipeline] = audio, calls
    (serial, serial_calls), (piped, piped_calls) = runs[False], runs[True]
    assert len(piped_calls) >= 2 and len(piped_calls) >= len(serial_calls)
    assert sum(piped_calls, []) == sum(serial_calls, [])
    np.testing.assert_array_equal(piped.samples, serial.samples)
    assert piped.segments == serial.segments


def test_a_pipelined_script_mixes_a_window_while_the_next_one_renders(monkeypatch):
    """The second window's render must overlap the first window's mixing: it waits (at most 10 s) for the mixer to
    have started on the first window, which a serial loop would only do after it returned. Then an error while the
    mixer works waits for the window in flight and reaches the caller."""
    import threading
    import time

    script = Script.parse(PIPELINE_SCRIPT)
    mixing = threading.Event()
    overlapped = []
    calls = [0]

    def synth_many(requests):
        calls[0] += 1
        if calls[0] == 2:
            overlapped.append(mixing.wait(10))
        return [synthesize(text, voice, speed) for text, voice, speed, _ in requests]

    add_turn = EpisodeWriter.add_turn

    def watched(self, *args, **kwargs):
        mixing.set()
        return add_turn(self, *args, **kwargs)

    monkeypatch.setattr(EpisodeWriter, "add_turn", watched)
    mix_script(script, synth_many, voices=["jf_alpha", "jm_kumo"], pipeline=True)
    assert overlapped == [True]

    finished = threading.Event()

    def slow_second(requests):
        calls[0] += 1
        out = [synthesize(text, voice, speed) for text, voice, speed, _ in requests]
        if calls[0] == 2:
            time.sleep(0.3)
            finished.set()
        return out

    def failing(self, *args, **kwargs):
        raise RuntimeError("the mixer failed")

    monkeypatch.setattr(EpisodeWriter, "add_turn", failing)
    calls[0] = 0
    with pytest.raises(RuntimeError, match="the mixer failed"):
        mix_script(script, slow_second, voices=["jf_alpha", "jm_kumo"], pipeline=True)
    assert finished.is_set()  # the window in flight finished before the error left mix_script
