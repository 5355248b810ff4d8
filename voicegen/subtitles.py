"""Subtitles and transcripts from timed segments: SRT, WebVTT (with <v Speaker> tags) and JSON.

Long turns are split into cues of at most `max_lines` lines of about `line_chars` characters, at word
boundaries (preferring sentence ends). With word times a cue runs from its first word's start to its last
word's end; without them a turn's time is shared among its cues in proportion to their length.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .audio import Segment, Word
from .files import atomic_write

LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0
"""A cue is cut before it would last longer than this (when word times say so)."""
MIN_CUE_S = 0.05


@dataclass(frozen=True)
class Cue:
    """One subtitle: [start, end) in seconds, its text (lines joined by '\\n') and speaker if known.

    Its fields echo `voicegen.audio.Segment`'s on purpose (the duplicates tool pairs them): a cue is a piece of
    display text cut to subtitle limits, not a segment of speech, so it is a type of its own.
    """

    start: float
    end: float
    text: str
    speaker: str | None = None


def _wrap(words: Sequence[str], width: int) -> list[str]:
    """Greedy line wrapping of words (a word longer than width gets a line of its own)."""
    lines: list[str] = []
    for w in words:
        if lines and len(lines[-1]) + 1 + len(w) <= width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def _fits(words: Sequence[str], width: int, max_lines: int) -> bool:
    return len(_wrap(words, width)) <= max_lines


def _group(tokens: Sequence[str], width: int, max_lines: int, durations: Sequence[float] | None) -> list[range]:
    """Split token indices into consecutive groups that each fit the cue limits; prefers sentence ends."""
    groups, start = [], 0
    while start < len(tokens):
        stop = start + 1
        while stop < len(tokens) and _fits(tokens[start : stop + 1], width, max_lines) and (
            durations is None or sum(durations[start : stop + 1]) <= MAX_CUE_S
        ):
            stop += 1
        if stop < len(tokens):  # cut after the last sentence end past the cue's first third, else clause end
            n = stop - start
            for ends, earliest in (((".", "?", "!", "。", "？", "！"), n // 3), ((",", ";", ":", "、", "，"), n // 2)):
                cut = next((k for k in range(stop - 1, start + earliest - 1, -1) if tokens[k].endswith(ends)), None)
                if cut is not None:
                    stop = cut + 1
                    break
        groups.append(range(start, stop))
        start = stop
    return groups


def segment_cues(segment: Segment, line_chars: int = LINE_CHARS, max_lines: int = MAX_LINES) -> list[Cue]:
    """Cues for one segment, in order, inside [segment.start, segment.end]."""
    if segment.words and all(w.text.strip() for w in segment.words):
        words: Sequence[Word] = segment.words
        tokens = [w.text.strip().replace("-->", "->") for w in words]
        nexts = [w.start for w in words[1:]] + [words[-1].end]
        durations = [max(0.0, nxt - w.start) for w, nxt in zip(words, nexts)]
        cues = []
        for g in _group(tokens, line_chars, max_lines, durations):
            text = "\n".join(_wrap(tokens[g.start : g.stop], line_chars))
            cues.append(Cue(words[g.start].start, words[g.stop - 1].end, text, segment.speaker))
        # the first cue starts with the segment, the last ends with it, and cues meet without overlap
        cues[0] = Cue(segment.start, cues[0].end, cues[0].text, segment.speaker)
        cues[-1] = Cue(cues[-1].start, segment.end, cues[-1].text, segment.speaker)
        return cues
    tokens = segment.text.replace("-->", "->").split()
    if not tokens:
        return []
    groups = _group(tokens, line_chars, max_lines, None)
    sizes = [sum(len(t) + 1 for t in tokens[g.start : g.stop]) for g in groups]
    total, acc, cues = sum(sizes), 0, []
    span = segment.end - segment.start
    for g, size in zip(groups, sizes):
        start = segment.start + span * acc / total
        acc += size
        end = segment.start + span * acc / total
        cues.append(Cue(start, end, "\n".join(_wrap(tokens[g.start : g.stop], line_chars)), segment.speaker))
    return cues


def cues_from_segments(segments: Sequence[Segment], line_chars: int = LINE_CHARS,
                       max_lines: int = MAX_LINES) -> list[Cue]:
    """All cues in time order, with times made monotonic (each cue starts at or after the previous end)."""
    cues: list[Cue] = []
    for seg in sorted(segments, key=lambda s: s.start):
        cues.extend(segment_cues(seg, line_chars, max_lines))
    out: list[Cue] = []
    for cue in cues:
        start = max(cue.start, out[-1].end if out else 0.0)
        end = max(cue.end, start + MIN_CUE_S)
        out.append(Cue(start, end, cue.text, cue.speaker))
    return out


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(segments: Sequence[Segment], speaker_labels: bool = True) -> str:
    """SubRip text; with speaker_labels the first cue of each turn starts with 'Speaker: '."""
    blocks = []
    cues = cues_from_segments(_labelled(segments) if speaker_labels else segments)
    for i, cue in enumerate(cues, 1):
        blocks.append(f"{i}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n{cue.text}\n")
    return "\n".join(blocks)


def _labelled(segments: Sequence[Segment]) -> list[Segment]:
    """Segments whose text (and first word) carry a 'Speaker: ' prefix, so the label is wrapped with the text."""
    out = []
    for s in segments:
        if not s.speaker:
            out.append(s)
            continue
        words = s.words
        if words:
            words = (Word(f"{s.speaker}: {words[0].text.strip()}", words[0].start, words[0].end),) + tuple(words[1:])
        out.append(Segment(f"{s.speaker}: {s.text}", s.start, s.end, s.speaker, s.voice, words))
    return out


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT text; each cue's text is wrapped in a <v Speaker> voice tag when the speaker is known."""
    blocks = ["WEBVTT\n"]
    for cue in cues_from_segments(segments):
        text = _escape_vtt(cue.text)
        if cue.speaker:
            text = f"<v {_escape_vtt(cue.speaker)}>{text}</v>"
        blocks.append(f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def to_json_transcript(segments: Sequence[Segment], indent: int | None = 2) -> str:
    """{"turns": [{"speaker", "voice", "text", "start", "end", "words": [{"text", "start", "end"}]}]}, times
    in seconds rounded to milliseconds."""
    turns = [
        {
            "speaker": s.speaker,
            "voice": s.voice,
            "text": s.text,
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in s.words],
        }
        for s in segments
    ]
    return json.dumps({"turns": turns}, indent=indent, ensure_ascii=False)


_TIME_RE = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{3})"
_CUE_TIME_RE = re.compile(rf"^\s*{_TIME_RE}\s*-->\s*{_TIME_RE}")


def _seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _parse_blocks(text: str, kind: str) -> list[tuple[float, float, list[str], int]]:
    """(start, end, text lines, line number) for each cue; ValueError with the line number on bad timing."""
    out = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _CUE_TIME_RE.match(lines[i])
        if not m:
            if "-->" in lines[i]:
                raise ValueError(f"{kind} line {i + 1}: bad cue timing {lines[i]!r}")
            i += 1
            continue
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        if end < start:
            raise ValueError(f"{kind} line {i + 1}: cue ends before it starts")
        body, j = [], i + 1
        while j < len(lines) and lines[j].strip():
            body.append(lines[j])
            j += 1
        out.append((start, end, body, i + 1))
        i = j
    return out


def parse_srt(text: str) -> list[Cue]:
    """Cues of a SubRip file (speaker is None; a 'Name: ' label stays in the text)."""
    return [Cue(start, end, "\n".join(body)) for start, end, body, _ in _parse_blocks(text, "SRT")]


_VOICE_RE = re.compile(r"^<v(?:\.[\w.-]+)?\s+([^>]*)>(.*?)(?:</v>)?$", re.DOTALL)


def parse_vtt(text: str) -> list[Cue]:
    """Cues of a WebVTT file; a leading <v Speaker> tag becomes `speaker`, entities are unescaped."""
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise ValueError("VTT line 1: a WebVTT file starts with 'WEBVTT'")
    cues = []
    for start, end, body, _ in _parse_blocks(text, "VTT"):
        joined, speaker = "\n".join(body), None
        m = _VOICE_RE.match(joined)
        if m:
            speaker, joined = _unescape_vtt(m.group(1)), m.group(2)
        cues.append(Cue(start, end, _unescape_vtt(joined), speaker))
    return cues


def _unescape_vtt(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text: a temporary file in the same folder, renamed when complete."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    return atomic_write(path, write)


_WRITERS = {".srt": to_srt, ".vtt": to_vtt, ".json": to_json_transcript}


def write_subtitles(path: str | os.PathLike, segments: Sequence[Segment]) -> Path:
    """Write segments as .srt, .vtt or .json (transcript) by the path's extension, atomically."""
    ext = Path(path).suffix.lower()
    if ext not in _WRITERS:
        raise ValueError(f"cannot write subtitles to {str(path)!r}: use one of {', '.join(_WRITERS)}")
    return write_text(path, _WRITERS[ext](segments))
