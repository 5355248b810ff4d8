"""Subtitles and transcripts (voicegen.podcast.subtitles): cue splitting, SRT/VTT/JSON and their parsers."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicegen.audio import Segment, Word
from voicegen import subtitles as S

LONG = ("Text to speech starts with normalization, where numbers and abbreviations become words. "
        "Then a phonemizer maps words to sounds. Finally a neural network predicts durations and pitch, "
        "and a decoder turns everything into a waveform that you can hear.")


def timed(text, start, seconds_per_word=0.3, speaker=None, voice=None):
    words = text.split()
    ws = tuple(Word(w, start + i * seconds_per_word, start + (i + 0.8) * seconds_per_word) for i, w in enumerate(words))
    return Segment(text, start, start + len(words) * seconds_per_word, speaker, voice, ws)


SEGMENTS = [
    timed("Welcome back to the show!", 0.0, speaker="Host", voice="jf_alpha"),
    timed(LONG, 2.0, speaker="Guest", voice="jm_kumo"),
    Segment("Thanks, that was clear & <useful>, and this turn has no word times at all, so time is shared.",
            20.0, 26.0, "Host"),
]


def check_cues(cues, segments, labels=False):
    """Cues are monotonic, readable, cover each segment from its start to its end and keep all its words."""
    for a, b in zip(cues, cues[1:]):
        assert a.start < a.end <= b.start
    for c in cues:
        lines = c.text.split("\n")
        assert len(lines) <= S.MAX_LINES
        assert all(len(line) <= S.LINE_CHARS or " " not in line for line in lines)
    for seg in segments:
        mine = [c for c in cues if seg.start - 1e-3 <= c.start and c.end <= seg.end + 1e-3]
        assert mine[0].start == pytest.approx(seg.start, abs=1e-3)
        assert mine[-1].end == pytest.approx(seg.end, abs=1e-3)
        text = " ".join(c.text.replace("\n", " ") for c in mine)
        if labels and seg.speaker:
            text = text.removeprefix(f"{seg.speaker}: ")
        assert text == " ".join(seg.text.split())


def test_long_turns_are_split_into_readable_cues():
    cues = S.cues_from_segments(SEGMENTS)
    assert len(cues) > len(SEGMENTS)
    check_cues(cues, SEGMENTS)
    guest = [c for c in cues if c.speaker == "Guest"]
    # cues use word times: each starts at one of the segment's word starts (or the segment start)
    starts = {w.start for w in SEGMENTS[1].words} | {SEGMENTS[1].start}
    assert all(any(abs(c.start - s) < 1e-9 for s in starts) for c in guest)
    assert all(c.end - c.start <= S.MAX_CUE_S + 0.3 for c in guest)
    # cuts fall at sentence or clause ends where the text allows
    assert all(c.text.endswith((".", ",")) for c in guest), [c.text for c in guest]


def test_srt_round_trip():
    text = S.to_srt(SEGMENTS)
    assert text.startswith("1\n00:00:00,000 --> ")
    cues = S.parse_srt(text)
    check_cues(cues, SEGMENTS, labels=True)
    assert cues[0].text.startswith("Host: Welcome")
    plain = S.parse_srt(S.to_srt(SEGMENTS, speaker_labels=False))
    assert plain[0].text.startswith("Welcome")


def test_vtt_round_trip_with_voice_tags():
    text = S.to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert "<v Host>Welcome back" in text and "&amp; &lt;useful&gt;" in text
    cues = S.parse_vtt(text)
    check_cues(cues, SEGMENTS)
    assert [c.speaker for c in cues][:2] == ["Host", "Guest"]
    assert any("& <useful>" in c.text for c in cues)


def test_json_transcript_keeps_turns_and_words():
    data = json.loads(S.to_json_transcript(SEGMENTS))
    assert [t["speaker"] for t in data["turns"]] == ["Host", "Guest", "Host"]
    first = data["turns"][0]
    assert first["voice"] == "jf_alpha" and first["start"] == 0.0
    assert [w["text"] for w in first["words"]] == "Welcome back to the show!".split()
    assert data["turns"][2]["words"] == []


def test_timestamps_over_an_hour():
    seg = Segment("Late in the episode.", 3725.5, 3727.25, "Host")
    assert "01:02:05,500 --> 01:02:07,250" in S.to_srt([seg])
    assert S.parse_vtt(S.to_vtt([seg]))[0].start == pytest.approx(3725.5)


def test_parsers_reject_bad_files():
    with pytest.raises(ValueError, match="WEBVTT"):
        S.parse_vtt("00:00:01.000 --> 00:00:02.000\nhi\n")
    with pytest.raises(ValueError, match="line 2"):
        S.parse_srt("1\n00:00:01,000 --> soon\nhi\n")
    with pytest.raises(ValueError, match="line 2: cue ends before"):
        S.parse_srt("1\n00:00:03,000 --> 00:00:02,000\nhi\n")


def test_write_text_is_atomic(tmp_path, monkeypatch):
    out = S.write_subtitles(tmp_path / "sub" / "ep.vtt", SEGMENTS)
    assert S.parse_vtt(out.read_text(encoding="utf-8"))
    assert [p.name for p in out.parent.iterdir()] == ["ep.vtt"]

    def broken_replace(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(S.os, "replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        S.write_text(tmp_path / "sub" / "other.srt", "text")
    assert [p.name for p in out.parent.iterdir()] == ["ep.vtt"]
    with pytest.raises(ValueError, match=r"\.txt"):
        S.write_subtitles(tmp_path / "ep.txt", SEGMENTS)


words = st.text(alphabet=st.characters(whitelist_categories=("L", "N", "P")), min_size=1, max_size=15)


@st.composite
def segment_lists(draw):
    t, out = 0.0, []
    for _ in range(draw(st.integers(0, 5))):
        t += draw(st.floats(0, 3))
        ws = draw(st.lists(words, min_size=1, max_size=40))
        use_words = draw(st.booleans())
        if use_words:
            timed_words = []
            for w in ws:
                start = t
                t += draw(st.floats(0.01, 1.0))
                timed_words.append(Word(w, start, t))
            out.append(Segment(" ".join(ws), timed_words[0].start, t, draw(st.sampled_from([None, "A", "Bo B"])),
                               words=tuple(timed_words)))
        else:
            start, t = t, t + draw(st.floats(0.1, 20))
            out.append(Segment(" ".join(ws), start, t, draw(st.sampled_from([None, "A"]))))
    return out


@settings(max_examples=60, deadline=None)
@given(segment_lists())
def test_any_segments_give_parseable_monotonic_subtitles(segments):
    for cues in (S.parse_srt(S.to_srt(segments, speaker_labels=False)), S.parse_vtt(S.to_vtt(segments))):
        assert len(cues) >= len(segments)
        for a, b in zip(cues, cues[1:]):
            assert a.start <= a.end <= b.start + 1e-9
        words_out = " ".join(c.text.replace("\n", " ") for c in cues).split()
        assert words_out == " ".join(s.text.replace("-->", "->") for s in segments).split()
