"""Render scripts with the engine: every piece of a window of turns goes through the engine in one call."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping

from ..audio import Audio, Segment
from ..engine import Engine, Request
from .mix import mix_script, write_episode
from .script import CastMember, Script
from .subtitles import to_json_transcript, to_srt, to_vtt, write_text


def piece_seed(seed: int | None, index: int) -> int | None:
    """The seed of the index-th rendered piece of a script rendered with `seed` (None stays None)."""
    return None if seed is None else (int(seed) * 7_368_787 + index) % (2**62)


class _Renderer:
    """The `synthesize_many` callable that `mix_script` / `write_episode` call window by window."""

    def __init__(self, engine: Engine, speed: float, seed: int | None):
        self.engine, self.speed, self.seed, self.count = engine, speed, seed, 0

    def __call__(self, requests):
        reqs = []
        for text, voice, speed in requests:
            reqs.append(Request(text, voice, speed * self.speed, piece_seed(self.seed, self.count)))
            self.count += 1
        return self.engine.synthesize_many(reqs)


def _with_cast(script: Script, voices: Mapping[str, str] | None) -> Script:
    """The script with `voices` ({speaker: voice}) overriding its cast header; unknown speakers are errors."""
    if not voices:
        return script
    unknown = [name for name in voices if name not in script.speakers]
    if unknown:
        raise ValueError(f"unknown speaker {unknown[0]!r} in voices; the script's speakers are: {', '.join(script.speakers)}")
    cast = dict(script.cast)
    for name, voice in voices.items():
        member = cast.get(name) or CastMember()
        cast[name] = CastMember(voice=voice, speed=member.speed, pan=member.pan)
    return Script(script.turns, cast)


def render_script(
    engine: Engine, script: Script, voices: Mapping[str, str] | None = None, speed: float = 1.0,
    seed: int | None = None, **options,
) -> Audio:
    """Render a script in memory -> Audio (mono, or stereo when the cast pans) with one Segment per turn.
    `options` go to the mixer (gaps, target_lufs, true_peak_db, intro, outro, stereo, normalize...)."""
    script = _with_cast(script, voices)
    return mix_script(script, _Renderer(engine, speed, seed), voices=engine.voices, **options)


@dataclass
class Episode:
    """What `render_episode` wrote: the file, its length and its turns."""

    path: str
    duration: float
    segments: list[Segment] = field(default_factory=list)


def _progress_bar(stream=sys.stderr):
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - started
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} turns, {elapsed:.0f} s")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def render_episode(
    engine: Engine,
    script: Script | str,
    path: str | os.PathLike,
    voices: Mapping[str, str] | None = None,
    speed: float = 1.0,
    seed: int | None = None,
    srt: str | None = None,
    vtt: str | None = None,
    transcript: str | None = None,
    stereo: bool | None = None,
    progress: bool = False,
    **options,
) -> Episode:
    """Render a script (object, text, or JSON text) straight to an audio file in bounded memory, plus optional
    subtitles and transcript. Nothing is left at `path` if rendering fails or is interrupted."""
    if isinstance(script, str):
        script = Script.from_json(script) if script.lstrip().startswith(("[", "{")) else Script.parse(script)
    script = _with_cast(script, voices)
    segments = write_episode(
        script, _Renderer(engine, speed, seed), path, voices=engine.voices, stereo=stereo or None,
        progress=_progress_bar() if progress else None, **options,
    )
    for target, fmt in ((srt, to_srt), (vtt, to_vtt), (transcript, to_json_transcript)):
        if target:
            write_text(target, fmt(segments))
    import soundfile as sf

    return Episode(str(path), sf.info(str(path)).duration, segments)
