"""Rendering scripts: the loop that drives synthesis window by window and feeds the mixer.

`mix_script` / `write_episode` take any batch function `synthesize_many([(text, voice, speed, pitch), ...]) -> [Audio]`
(so the loop can be tested without the model); `render_script` / `render_episode` plug in an `Engine`, whose
batches then hold every piece of a window of turns at once.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import interrupts
from ..audio import Audio, Segment
from ..batching import text_windows
from ..engine import Engine, Request
from ..renderer import check_speed
from ..weights import check_pitch
from ..seeds import check_seed, derive_seed
from ..subtitles import to_json_transcript, to_srt, to_vtt, write_text
from .mix import EpisodeWriter, join_pieces
from .script import CastMember, Pause, Script, Turn

SynthesizeMany = Callable[..., Sequence[Audio]]
"""synthesize_many([(text, voice, speed, pitch), ...]) -> [Audio, ...]: renders many pieces of turns at once (no
pause directives in the texts; pitch in semitones), so that a batched engine sees a whole window of the script in
one call. It may also take a keyword `done`, a callable that it calls with a request's index as soon as that
request is rendered (the engine's does): progress then moves turn by turn inside a window instead of once per
window."""

Progress = Callable[[int, int], None]
"""progress(turns_done, turns_total): called as turns finish rendering (with a `done`-capable synthesize_many),
and after each window."""

WINDOW_CHARS = 6000
"""Characters of script text rendered per call of `synthesize_many` (about 6-7 minutes of speech): large enough to
fill batches, small enough that a 60-minute episode never holds more than a window of audio in memory (two when
pipelined)."""

PIPELINED_WINDOWS = {"cuda": False}
"""Per device type: `render_script` and `render_episode` render the next window of turns on a worker thread while
the current one is mixed, and split a script that fits in one window into two halves, so that the mixer (CPU work)
overlaps rendering (on a GPU mostly waiting for the device); at most two windows of audio are held instead of one.
Off by default: an A/B switch for the next GPU session (`benchmarks/switches.py`: pipelined-script). On an H200 the
one-minute script spent 48 ms of its 122 in CPU stages before or after the GPU's 70 ms (benchmarks/RESULTS.md,
seventeenth session); whether two half batches cost the GPU less than the overlap saves is what the A/B measures.
Not for the CPU, where rendering and mixing share the same cores and a window renders for a minute or more (an
error or Ctrl-C while mixing waits for the window in flight)."""


def piece_seed(seed: int | None, index: int) -> int | None:
    """The seed of the index-th rendered piece of a script rendered with `seed` (None stays None)."""
    return None if seed is None else derive_seed(seed, index)


def _leading_pauses(pieces: Sequence) -> list[Pause]:
    out = []
    for p in pieces:
        if not isinstance(p, Pause):
            break
        out.append(p)
    return out


def feed_script(script: Script, synthesize_many: SynthesizeMany, voices: Sequence[str], writer: EpisodeWriter,
                progress: Progress | None = None, cast_from: Sequence[str] | None = None,
                pipeline: bool = False) -> None:
    """Cast (the cast's voices from `voices`, the other speakers' from `cast_from`, default `voices`), render (a
    window of turns per `synthesize_many` call) and add every turn to `writer`, in order. With `pipeline`
    (`PIPELINED_WINDOWS`), the next window renders on a worker thread while this one is mixed, and a script shorter
    than two windows is rendered in two halves: every piece keeps its seed, its batch neighbours change (so its
    audio is the same within batch rounding, README "Determinism").

    Pauses at the very start or end of a turn become silence around the turn; inner pauses stay inside it.
    """
    casting = script.casting(voices, cast_from)
    cast = {name: voice for name, (voice, _) in casting.items()}
    turns = script.turns
    lengths = [len(t.text) for t in turns]
    # pipelined, a script shorter than two windows is rendered in two halves, so that mixing has something to overlap
    limit = min(WINDOW_CHARS, max(1, -(-sum(lengths) // 2))) if pipeline else WINDOW_CHARS
    windows = text_windows(lengths, limit)
    piecewise = progress is not None and _takes_done(synthesize_many)

    def requests_of(lo: int, hi: int) -> list[tuple[str, str, float, float]]:
        return [(p, cast[t.speaker], script.member(t.speaker).speed, casting[t.speaker][1])
                for t in turns[lo:hi] for p in t.pieces if not isinstance(p, Pause)]

    def render(k: int) -> list[Audio]:
        lo, hi = windows[k]
        if plan_ahead is not None and k + 1 < len(windows):
            plan_ahead(requests_of(*windows[k + 1]))  # the next window's frontend runs while this one renders
        if piecewise:
            return list(synthesize_many(requests_of(lo, hi), done=_turn_counter(turns, lo, hi, progress)))
        return list(synthesize_many(requests_of(lo, hi)))

    plan_ahead = getattr(synthesize_many, "prepare", None)  # the engine's: plans a window in the background
    if plan_ahead is not None and windows:
        plan_ahead(requests_of(*windows[0]))
    pool = ThreadPoolExecutor(1, thread_name_prefix="voicegen-window") if pipeline and len(windows) > 1 else None
    ahead: Future | None = None  # the next window, rendering on the pool's thread
    try:
        for k, (lo, hi) in enumerate(windows):
            interrupts.check()  # a Ctrl-C that compiled code swallowed: the next window would be rendered for nothing
            rendered = iter(ahead.result() if ahead is not None else render(k))
            ahead = pool.submit(render, k + 1) if pool is not None and k + 1 < len(windows) else None
            for turn in turns[lo:hi]:
                pieces = [p if isinstance(p, Pause) else next(rendered) for p in turn.pieces]
                lead = _leading_pauses(pieces)
                trail = _leading_pauses(pieces[::-1]) if len(lead) < len(pieces) else []  # a turn of pauses: once
                spoken = pieces[len(lead) : len(pieces) - len(trail)]
                if lead:
                    writer.add_silence(sum(p.seconds for p in lead))
                if spoken:
                    writer.add_turn(join_pieces(spoken, writer.sample_rate, fade_ends=False), speaker=turn.speaker,
                                    text=turn.spoken_text, voice=cast[turn.speaker],
                                    pan=script.member(turn.speaker).pan,
                                    copy=False)  # the joined samples are ours: faded in place
                if trail:
                    writer.add_silence(sum(p.seconds for p in trail))
            if progress is not None and not (piecewise and ahead is not None):  # the next window's own count runs
                progress(hi, len(turns))
    finally:
        if pool is not None:  # on an error while mixing, the window in flight finishes first (the engine is ours)
            pool.shutdown(wait=True)


def _takes_done(synthesize_many: SynthesizeMany) -> bool:
    try:
        return "done" in inspect.signature(synthesize_many).parameters
    except (TypeError, ValueError):
        return False


def _turn_counter(turns: Sequence[Turn], lo: int, hi: int, progress: Progress) -> Callable[[int], None]:
    """done(request index) for the window turns[lo:hi]: calls progress(turns done, total) each time the last
    spoken piece of a turn is rendered (turns with nothing to say count as done at once)."""
    owner = [k for k in range(lo, hi) for p in turns[k].pieces if not isinstance(p, Pause)]
    left = {k: 0 for k in range(lo, hi)}
    for k in owner:
        left[k] += 1
    finished = [lo + sum(1 for k in range(lo, hi) if left[k] == 0)]
    if finished[0] > lo:
        progress(finished[0], len(turns))

    def done(index: int) -> None:
        left[owner[index]] -= 1
        if left[owner[index]] == 0:
            finished[0] += 1
            progress(finished[0], len(turns))

    return done


def mix_script(script: Script, synthesize_many: SynthesizeMany, *, voices: Sequence[str],
               stereo: bool | None = None, progress: Progress | None = None, cast_from: Sequence[str] | None = None,
               pipeline: bool = False, **options) -> Audio:
    """Render a whole script in memory: cast voices, synthesize the pieces (a window of turns per call), mix,
    normalize.

    voices: the available voice names; cast_from: those automatic casting draws on (default: `voices`);
    pipeline: render the next window while mixing this one (`feed_script`). `options` are EpisodeWriter's.
    Returns Audio with one Segment per turn (text without directives, words, speaker, voice).
    """
    writer = EpisodeWriter(None, stereo=script.stereo if stereo is None else stereo, **options)
    with writer:
        feed_script(script, synthesize_many, voices, writer, progress, cast_from, pipeline)
    return writer.audio


def write_episode(script: Script, synthesize_many: SynthesizeMany, path: str | os.PathLike, *,
                  voices: Sequence[str], stereo: bool | None = None, progress: Progress | None = None,
                  cast_from: Sequence[str] | None = None, pipeline: bool = False, **options) -> list[Segment]:
    """Like `mix_script` but streams to `path` in bounded memory; returns the segments."""
    writer = EpisodeWriter(path, stereo=script.stereo if stereo is None else stereo, **options)
    with writer:
        feed_script(script, synthesize_many, voices, writer, progress, cast_from, pipeline)
    return writer.segments


class _EngineBatches:
    """The `synthesize_many` callable backed by an engine: global speed and pitch applied, a seed per piece in
    script order.

    `prepare(requests)` plans a window (the frontend) on a background thread, so that `feed_script` can have the
    next window's text processed while the current window renders; a call then uses the prepared plans.
    """

    def __init__(self, engine: Engine, speed: float, seed: int | None, pitch: float = 0.0):
        seed = check_seed(seed)  # ValueError for 1.5, True or "1", as for plain text
        self.engine, self.speed, self.seed, self.pitch, self.count = engine, speed, seed, pitch, 0
        self._prepared: list[tuple[list, Future]] = []
        self._pool: ThreadPoolExecutor | None = None

    def _requests(self, requests) -> list[Request]:
        reqs = []
        for text, voice, speed, pitch in requests:
            reqs.append(Request(text, voice, speed * self.speed, piece_seed(self.seed, self.count), pitch + self.pitch))
            self.count += 1
        return reqs

    def prepare(self, requests) -> None:
        reqs = self._requests(requests)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="voicegen-frontend")
        self._prepared.append((list(requests), self._pool.submit(lambda: [self.engine.plan(r) for r in reqs])))

    def __call__(self, requests, done: Callable[[int], None] | None = None):
        if self._prepared and self._prepared[0][0] == list(requests):
            plans = self._prepared.pop(0)[1].result()
        else:
            plans = [self.engine.plan(r) for r in self._requests(requests)]
        if done is not None:  # a hook per rendered request: done(index) once all its chunks have audio
            for index, plan in enumerate(plans):
                left = [len(plan.items)]

                def chunk_done(item, index=index, left=left):
                    left[0] -= 1
                    if left[0] == 0:
                        done(index)

                for item in plan.items:
                    item.on_done = chunk_done
        self.engine.renderer.render([item for plan in plans for item in plan.items])
        return [self.engine.assemble(plan) for plan in plans]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _engine_options(engine: Engine) -> dict:
    """What `mix_script` and `write_episode` take from an engine: its voices, the built-in ones that automatic
    casting draws on, and whether its device pipelines windows (`PIPELINED_WINDOWS`)."""
    return {"voices": engine.voices, "cast_from": engine.voice_bank.builtin_names,
            "pipeline": PIPELINED_WINDOWS.get(engine.device.type, False)}


def require_turns(script: Script) -> Script:
    """`script`, or ValueError if it has no turns (empty, only comments or a cast header): nothing to render."""
    if not script.turns:
        raise ValueError("the script has no turns: write at least one 'Speaker: text' line")
    return script


def prepare(engine: Engine, script: Script, voices: Mapping[str, str] | None = None, speed: float = 1.0,
            pitch: float = 0.0) -> Script:
    """The script with `voices` ({speaker: voice}) overriding its cast header, checked before anything renders:
    every speaker has a voice the engine knows, every cast speed times `speed` (and the voice's own speed) is a
    valid speed, and every speaker's pitch plus `pitch` (and the voice's own pitch) a valid pitch.
    ValueError names the speaker and what is wrong; TypeError if `voices` is not a mapping."""
    if voices is not None and not isinstance(voices, Mapping):
        raise TypeError(f"voices must be a mapping {{speaker: voice}}; got {type(voices).__name__}")
    if voices:
        unknown = [name for name in voices if name not in script.speakers]
        if unknown:
            raise ValueError(f"unknown speaker {unknown[0]!r} in voices; the script's speakers are: "
                             f"{', '.join(script.speakers)}")
        cast = dict(script.cast)
        for name, voice in voices.items():
            member = cast.get(name) or CastMember()
            cast[name] = CastMember(voice=voice, speed=member.speed, pan=member.pan, pitch=member.pitch)
        script = Script(script.turns, cast)
    require_turns(script)
    check_speed(speed)
    check_pitch(pitch)
    options = _engine_options(engine)
    for name, (voice, cast_pitch) in script.casting(options["voices"], options["cast_from"]).items():
        member = script.member(name)
        try:
            check_speed(member.speed * speed)
        except ValueError:
            raise ValueError(f"speaker {name!r}: cast speed {member.speed:g} x speed {speed:g} = "
                             f"{member.speed * speed:g}, outside the accepted 0.25 to 4.0") from None
        own = engine.voice_bank.voice(voice)
        try:
            check_speed(member.speed * speed * own.speed)
            check_pitch(cast_pitch + pitch + own.pitch)
        except ValueError as e:
            raise ValueError(f"speaker {name!r} with voice {voice!r}: {e}") from None
    return script


def render_script(engine: Engine, script: Script, voices: Mapping[str, str] | None = None, speed: float = 1.0,
                  seed: int | None = None, pitch: float = 0.0, **options) -> Audio:
    """Render a script in memory -> Audio (mono, or stereo when the cast pans) with one Segment per turn.
    `pitch` (semitones) shifts every speaker on top of the cast's pitch.
    `options` go to the mixer (gaps, target_lufs, true_peak_db, intro, outro, stereo, normalize, progress...)."""
    script = prepare(engine, script, voices, speed, pitch)
    batches = _EngineBatches(engine, speed, seed, pitch)
    try:
        return mix_script(script, batches, **_engine_options(engine), **options)
    finally:
        batches.close()


@dataclass
class Episode:
    """What `render_episode` wrote: the file, its length and its turns."""

    path: str
    duration: float
    segments: list[Segment] = field(default_factory=list)


def progress_bar(stream=None) -> Progress:
    """A one-line progress bar of turns on `stream` (default stderr), redrawn as turns finish rendering."""
    from ..progress import progress_bar as bar

    return bar("turn", stream)


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
    pitch: float = 0.0,
    **options,
) -> Episode:
    """Render a script (object, text, or JSON text) straight to an audio file in bounded memory, plus optional
    subtitles and transcript. Nothing is left at `path` if rendering fails or is interrupted. Every output path is
    checked before anything renders (ValueError naming it if it cannot be written)."""
    from ..files import check_output

    for target in (path, srt, vtt, transcript):
        if target:
            check_output(target)
    if isinstance(script, str):
        script = Script.from_str(script)
    script = prepare(engine, script, voices, speed, pitch)
    batches = _EngineBatches(engine, speed, seed, pitch)
    try:
        segments = write_episode(script, batches, path, **_engine_options(engine), stereo=stereo or None,
                                 progress=progress_bar() if progress else None, **options)
    finally:
        batches.close()
    for target, fmt in ((srt, to_srt), (vtt, to_vtt), (transcript, to_json_transcript)):
        if target:
            write_text(target, fmt(segments))
    import soundfile as sf

    return Episode(str(path), sf.info(str(path)).duration, segments)
