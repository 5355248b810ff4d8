"""Mixing rendered turns into an episode: gaps, fades, stereo placement, intro/outro, loudness. No model here:
`voicegen.podcast.render` drives the engine and feeds this.

`EpisodeWriter` is the one implementation. It streams unnormalized float audio to a temporary file next to
the output (or keeps it in memory when no path is given), measures loudness as it goes (on the mixer's helper
thread, `loudness.worker`, while the calling thread pans and bounds the peaks), and on `close()`
makes a second pass applying gain and a true-peak limiter, writing the final file atomically.
`mix_turns` is a thin wrapper over it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import dsp, loudness
from ..audio import Audio, Segment, Word, audio_format
from ..constants import SAMPLE_RATE
from ..files import atomic_write
from ..memory import small_pages
from .script import Pause

FADE_S = 0.008
"""Raised-cosine fade at both ends of every turn and piece, so joins with silence never click."""
TRIM_THRESHOLD = 10 ** (-50 / 20)
"""Leading/trailing samples quieter than -50 dBFS are trimmed from turns (gaps are then exactly as set)."""
TRIM_KEEP_S = 0.02
"""Silence kept at each end of a trimmed turn (protects soft onsets and releases)."""


@dataclass(frozen=True)
class Gaps:
    """Silence between consecutive turns, in seconds.

    The gap after a question (text ending in '?') or around a quick reply (a turn of at most `quick_chars`
    characters, e.g. "Right." or "Thanks for having me.") is the shorter of `quick` and the base gap; the
    base gap is `speaker_change` when the speaker changes, else `same_speaker`. `music` separates the intro
    and outro from speech. Explicit silence (`add_silence`, trailing pauses) adds to these.
    """

    speaker_change: float = 0.45
    same_speaker: float = 0.35
    quick: float = 0.25
    quick_chars: int = 24
    music: float = 0.8

    def between(self, prev_speaker: str | None, prev_text: str, speaker: str | None, text: str) -> float:
        base = self.same_speaker if prev_speaker == speaker else self.speaker_change
        if _is_question(prev_text) or _is_quick(prev_text, self.quick_chars) or _is_quick(text, self.quick_chars):
            return min(base, self.quick)
        return base


def _is_question(text: str) -> bool:
    return text.rstrip(" \"'”’)]」』").endswith(("?", "？"))


def _is_quick(text: str, quick_chars: int) -> bool:
    return 0 < len(text.strip()) <= quick_chars


def load_music(source: str | os.PathLike | Audio, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """Read an intro/outro (any format soundfile reads, any rate, mono or stereo) as (N, channels) float32 at
    `sample_rate`; stereo is averaged for a mono episode, mono is copied to both channels of a stereo one."""
    if isinstance(source, Audio):
        data, sr = np.asarray(source.samples, dtype=np.float32), source.sample_rate
    else:
        import soundfile as sf

        try:
            data, sr = sf.read(str(source), dtype="float32", always_2d=True)
        except RuntimeError as e:  # soundfile's LibsndfileError (unreadable or missing file)
            raise ValueError(f"cannot read audio file {str(source)!r}: {e}") from None
    data = dsp.resample(data, sr, sample_rate)
    return dsp.to_channels(data, channels)


def _trim(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Drop near-silent frames at both ends, keeping TRIM_KEEP_S; returns (trimmed, frames dropped at start).
    x: (N, C). Looks only at the ends, in growing pieces, until it meets a loud sample."""
    first = _first_loud(x)
    if first is None:
        return x[:0], 0
    last = len(x) - 1 - _first_loud(x[::-1])
    keep = int(TRIM_KEEP_S * sr)
    start, stop = max(0, first - keep), min(len(x), last + 1 + keep)
    return x[start:stop], start


def _first_loud(x: np.ndarray, step: int = 2048) -> int | None:
    """Index of the first frame of x (N, C) with a sample louder than TRIM_THRESHOLD, or None."""
    start = 0
    while start < len(x):
        loud = np.flatnonzero((np.abs(x[start : start + step]) > TRIM_THRESHOLD).any(axis=1))
        if len(loud):
            return start + int(loud[0])
        start, step = start + step, 2 * step
    return None


def _words_of(audio: Audio) -> tuple[Word, ...]:
    return tuple(w for seg in audio.segments for w in seg.words)


def _shift_words(words: Iterable[Word], offset: float, lo: float, hi: float) -> tuple[Word, ...]:
    """Words moved by `offset` seconds and kept inside [lo, hi] (trimming may have cut a word's silent edge)."""
    out = []
    for w in (w.shifted(offset) for w in words):
        start = min(max(w.start, lo), hi)
        out.append(Word(w.text, start, min(max(w.end, start), hi)))
    return tuple(out)


def _after(previous: Future | None, add, *args) -> None:
    """add(*args) once `previous` (an earlier task of the same meter on the same helper thread, so already run) has
    succeeded: its failure is passed on instead."""
    if previous is not None:
        previous.result()
    add(*args)


class RawFrames:
    """Read-only (frames, channels) float32 view of a raw little-endian file, read only where sliced.

    Unlike np.memmap, pages read once do not stay mapped into the process, so reading an hour of audio
    block by block keeps memory flat.
    """

    ndim = 2

    def __init__(self, path: Path, frames: int, channels: int):
        self.path, self.shape = path, (frames, channels)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(self.shape[0])
        if step != 1:
            raise IndexError("RawFrames supports contiguous slices only")
        count = max(0, stop - start) * self.shape[1]
        data = np.fromfile(self.path, dtype="<f4", count=count, offset=start * self.shape[1] * 4)
        return data.reshape(-1, self.shape[1])


class EpisodeWriter:
    """Build an episode turn by turn in bounded memory; use as a context manager.

    >>> with EpisodeWriter("episode.flac", stereo=True) as ep:       # doctest: +SKIP
    ...     ep.add_turn(audio, speaker="Host", text="Welcome!", pan=-0.3)
    >>> ep.segments                                                     # doctest: +SKIP

    path: output file (format from the extension, as in `voicegen.audio`), or None to keep the result in
    memory (`self.audio` after `close()`; memory then grows with the episode). With a path, memory stays
    flat: turns go to a temporary float32 file beside the output, read back block by block on `close()`. On an exception (KeyboardInterrupt included) inside the `with`
    block or during `close()`, nothing is left at `path` and temporary files are removed.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, stereo: bool = False,
                 sample_rate: int = SAMPLE_RATE, gaps: Gaps | None = None, fade_s: float = FADE_S,
                 trim_silence: bool = True, normalize: bool = True, target_lufs: float = -16.0,
                 true_peak_db: float = -1.0, intro: str | os.PathLike | Audio | None = None,
                 outro: str | os.PathLike | Audio | None = None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            audio_format(self.path)  # fail before any work if the format cannot be written
        self.sample_rate = sample_rate
        self.channels = 2 if stereo else 1
        self.gaps = gaps or Gaps()
        self.fade = max(0, int(round(fade_s * sample_rate)))
        self.trim_silence = trim_silence
        self.normalize, self.target_lufs, self.true_peak_db = normalize, target_lufs, true_peak_db
        self.intro, self.outro = intro, outro
        self.segments: list[Segment] = []
        self.audio: Audio | None = None
        self._meter = loudness.LoudnessMeter(sample_rate, self.channels)
        self._metering: Future | None = None  # the meter's work in flight on the helper thread (`_measure`)
        self._peaks = loudness.PeakBounds(self.channels)  # where the true peak could be high, as turns arrive
        self._frames = 0
        self._prev: tuple[str | None, str] | None = None  # (speaker, text) of the last thing placed
        self._started = self._closed = False
        self._buffer: np.ndarray | None = None  # in-memory mode: (capacity, C), the first self._frames rows written
        self._raw = None  # file object of the temporary float32 stream
        self._raw_path: Path | None = None

    # ---- writing --------------------------------------------------------------------------------------

    def _write(self, frames: np.ndarray, mono: np.ndarray | None = None, gains: np.ndarray | None = None,
               placed: bool = False) -> None:
        """Append frames (N, C); `mono` (N,) and `gains` (C,) when frames == mono * gains (a panned turn), which the
        meter then filters once instead of once per channel; `placed` when frames are already the next rows of the
        in-memory buffer (`_next_rows`). The arrays are the writer's own from here on: the meter may still be
        reading them on the helper thread (`_measure`)."""
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if not len(frames):
            return
        if mono is not None:
            self._measure(self._meter.add_panned, mono, gains, frames=len(mono))
            self._peaks.add_panned(mono, gains)
        else:
            self._measure(self._meter.add, frames, frames=len(frames))
            self._peaks.add(frames)
        self._store(frames, placed)

    def _silence(self, seconds: float) -> None:
        """Append digital silence: the meter and the peak bounds skip it without looking at zeros."""
        n = int(round(max(0.0, seconds) * self.sample_rate))
        if n:
            self._measure(self._meter.add_silence, n, frames=0)
            self._peaks.add_silence(n)
            if self.path is None:
                self._next_rows(n)[...] = 0.0
                self._frames += n
            else:
                self._store(np.zeros((n, self.channels), np.float32))

    INITIAL_FRAMES = 1 << 21
    """Rows of the in-memory buffer at first (~87 s at 24 kHz; pages are only committed as rows are written); it
    doubles when full."""

    def _next_rows(self, n: int) -> np.ndarray:
        """In-memory mode: the buffer's next n rows (n, C), after the frames written so far (not yet counted)."""
        need = self._frames + n
        if self._buffer is None or len(self._buffer) < need:
            size = max(need, self.INITIAL_FRAMES if self._buffer is None else 2 * len(self._buffer))
            buffer = np.empty((size, self.channels), np.float32)
            small_pages(buffer)  # no huge-page compaction stalls as rows are first written (`memory.small_pages`)
            if self._frames:
                buffer[: self._frames] = self._buffer[: self._frames]
            self._buffer = buffer
        return self._buffer[self._frames : need]

    def _store(self, frames: np.ndarray, placed: bool = False) -> None:
        """Keep frames (N, C) float32: in the in-memory buffer (already there when `placed`), or appended to the
        temporary file."""
        if self.path is None:
            if not placed:
                self._next_rows(len(frames))[...] = frames
        else:
            if self._raw is None:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".raw", dir=self.path.parent)
                self._raw_path, self._raw = Path(tmp), os.fdopen(fd, "wb")
            self._raw.write(frames.astype("<f4", copy=False).data)  # no bytes copy
        self._frames += len(frames)

    def _measure(self, add, *args, frames: int) -> None:
        """Feed the meter (`add(*args)`, one of its add methods) with the next `frames` frames. Long pieces are
        metered on the mixer's helper thread (`loudness.worker`, numpy/scipy only) while this thread goes on with the
        peak bounds, the panned frames and the next turn; anything fed while metering is in flight is queued behind
        it, so the meter sees every piece in order. `_metered` waits for it; a failure there is raised by the next
        call or by `_metered`."""
        pending = self._metering
        if pending is not None and pending.done():
            self._metering = None
            pending.result()  # raises a failure of the metering in the background
            pending = None
        if loudness.on_worker() or (pending is None and frames < loudness.PARALLEL_MIN_FRAMES):
            add(*args)
        else:
            self._metering = loudness.worker().submit(_after, pending, add, *args)

    def _metered(self) -> loudness.LoudnessMeter:
        """The meter, once it has every frame written so far."""
        pending, self._metering = self._metering, None
        if pending is not None:
            pending.result()
        return self._meter

    def _start(self) -> None:
        if self._closed:
            raise ValueError("episode is already closed")
        if self._started:
            return
        self._started = True
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.intro is not None:
            self._write(dsp.fade(load_music(self.intro, self.sample_rate, self.channels), self.fade, self.fade))
            self._prev = (None, "")

    def _gap_before(self, speaker: str | None, text: str) -> None:
        if self._prev is None:
            return
        prev_speaker, prev_text = self._prev
        if prev_speaker is None:  # after the intro
            self._silence(self.gaps.music)
        else:
            self._silence(self.gaps.between(prev_speaker, prev_text, speaker, text))

    def add_silence(self, seconds: float) -> None:
        """Append silence (on top of the natural gap before the next turn)."""
        self._start()
        self._silence(seconds)

    def add_turn(self, audio: np.ndarray | Audio, *, speaker: str | None = None, text: str = "",
                 words: Sequence[Word] | None = None, voice: str | None = None,
                 pan: float | None = None, copy: bool = True) -> Segment:
        """Append one turn after the natural gap; returns its Segment in episode time.

        audio: (N,) or (N, C) float samples at the writer's rate, or an Audio (resampled if needed; its
        segments' words are used when `words` is None). Word times are relative to the start of `audio`.
        pan: stereo position in [-1, 1] (needs stereo=True); None centres mono speech.
        copy: False lets the writer fade the turn's edges in `audio`'s own samples instead of in a copy (one pass
        less), for samples the caller no longer needs, such as `join_pieces`' result; the writer may read them
        until `close()`, so they must not change after this call either.
        """
        self._start()
        if isinstance(audio, Audio):
            if words is None:
                words = _words_of(audio)
            x = np.asarray(audio.samples, dtype=np.float32)
            if audio.sample_rate != self.sample_rate:
                x = dsp.resample(x, audio.sample_rate, self.sample_rate)
        else:
            x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"turn audio must be finite (N,) or (N, C) samples, got shape {np.shape(audio)}")
        if pan is not None and self.channels == 1:
            raise ValueError(f"pan={pan} for {speaker!r} needs a stereo episode (stereo=True)")
        offset = 0
        if self.trim_silence:
            x, offset = _trim(x, self.sample_rate)
        if self.channels == 1 or pan is not None or x.shape[1] != 2:
            x = dsp.to_mono(x)  # (N,): a view when the turn is mono
        if copy and np.may_share_memory(x, audio.samples if isinstance(audio, Audio) else audio):
            x = dsp.fade(x, self.fade, self.fade)  # our own copy from here on
        else:  # already a new array (resampled, averaged to mono, converted), or the caller's to fade
            x = dsp.fade_inplace(x, self.fade, self.fade)
        mono = gains = None
        self._gap_before(speaker, text)
        placed = False
        if self.channels == 1:
            x = x[:, None]
        elif x.ndim == 1:
            mono, gains = x, dsp.pan_gains(0.0 if pan is None else pan)
            placed = self.path is None  # in memory: panned straight into the buffer
            x = dsp.place(mono, gains, out=self._next_rows(len(mono)) if placed else None)  # dsp.pan(mono, pan)
        start = self._frames / self.sample_rate
        self._write(x, mono, gains, placed)
        end = self._frames / self.sample_rate
        shifted = _shift_words(words or (), start - offset / self.sample_rate, start, end)
        segment = Segment(text=text, start=start, end=end, speaker=speaker, voice=voice, words=shifted)
        self.segments.append(segment)
        self._prev = (speaker, text)
        return segment

    # ---- finishing --------------------------------------------------------------------------------------

    def close(self) -> list[Segment]:
        """Add the outro, normalize, write the output (atomically) and return the segments. Idempotent."""
        if self._closed:
            return self.segments
        try:
            self._start()
            if self.outro is not None:
                if self._frames:
                    self._silence(self.gaps.music)
                self._write(dsp.fade(load_music(self.outro, self.sample_rate, self.channels), self.fade, self.fade))
            source = self._source()
            meter = self._metered()  # every frame metered (a failure of the metering is raised here)
            out = source if self.path is None else None  # in memory: our own buffer, limited in place
            if self.normalize and len(source):
                peaks = loudness.PeakMap(source, bounds=self._peaks)  # used by the gain search and the limiter
                gain = loudness.solve_gain(source, self.sample_rate, self.target_lufs, self.true_peak_db,
                                           measured_lufs=meter.integrated(), meter=meter, peaks=peaks)
                # in memory: two blocks, limited at once on two threads (one hand-off); to a file: bounded blocks
                block = -(-len(source) // 2) if out is not None else loudness.BLOCK_FRAMES
                blocks = loudness.limited_blocks(source, self.sample_rate, gain, self.true_peak_db, block,
                                                 peaks=peaks, out=out)
            else:
                step = loudness.BLOCK_FRAMES
                blocks = (np.clip(source[i : i + step], -1, 1, out=None if out is None else out[i : i + step])
                          for i in range(0, len(source), step))
            if self.path is None:
                for _ in blocks:  # each fills its part of `out`
                    pass
                self.audio = Audio(out[:, 0] if self.channels == 1 else out, self.sample_rate, self.segments)
            else:
                atomic_write(self.path, lambda tmp: self._write_output(tmp, blocks))
        finally:
            self._closed = True
            self._discard_raw()
        return self.segments

    def _source(self) -> np.ndarray:
        """All frames written so far, (N, C): a view of the in-memory buffer, or a RawFrames view of the temporary
        file."""
        if self.path is None:
            return self._buffer[: self._frames] if self._frames else np.zeros((0, self.channels), np.float32)
        if self._raw is None:
            return np.zeros((0, self.channels), np.float32)
        self._raw.close()
        return RawFrames(self._raw_path, self._frames, self.channels)

    def _write_output(self, tmp: str, blocks: Iterable[np.ndarray]) -> None:
        import soundfile as sf

        fmt, subtype = audio_format(self.path)
        with sf.SoundFile(tmp, "w", self.sample_rate, self.channels, subtype, format=fmt) as f:
            for block in blocks:  # each a new array of our own: clipped in place
                f.write(np.clip(block, -1.0, 1.0, out=block))

    def _discard_raw(self) -> None:
        if self._raw is not None:
            self._raw.close()
        if self._raw_path is not None:
            self._raw_path.unlink(missing_ok=True)
        self._raw, self._raw_path, self._buffer = None, None, None

    def abort(self) -> None:
        """Stop without writing anything; temporary files are removed."""
        self._closed = True
        self._metering = None  # metering in flight finishes on its own; its result is not needed
        self._discard_raw()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        try:
            self._discard_raw()
        except Exception:  # interpreter shutdown: best effort only
            pass


@dataclass(frozen=True)
class RenderedTurn:
    """A turn's audio with what `EpisodeWriter.add_turn` needs to place it."""

    audio: np.ndarray | Audio
    speaker: str | None = None
    text: str = ""
    words: tuple[Word, ...] | None = None
    voice: str | None = None
    pan: float | None = None


def mix_turns(turns: Iterable[RenderedTurn], *, stereo: bool | None = None, **options) -> Audio:
    """Mix rendered turns in memory (for short scripts): EpisodeWriter(None, ...) fed with every turn.

    stereo defaults to True when any turn has a pan. `options` are EpisodeWriter's (gaps, normalize,
    target_lufs, true_peak_db, intro, outro, ...). Returns Audio with one Segment per turn.
    """
    turns = list(turns)
    if stereo is None:
        stereo = any(t.pan is not None for t in turns)
    writer = EpisodeWriter(None, stereo=stereo, **options)
    with writer:
        for t in turns:
            writer.add_turn(t.audio, speaker=t.speaker, text=t.text, words=t.words, voice=t.voice, pan=t.pan)
    return writer.audio


def join_pieces(pieces: Sequence[Audio | Pause], sample_rate: int = SAMPLE_RATE,
                fade_s: float = FADE_S, fade_ends: bool = True) -> Audio:
    """Concatenate rendered text pieces and Pause silences into one Audio (mono), shifting word times.

    Each piece is faded in and out where it meets a pause, so the silences never start or end with a click;
    the joined audio's own start and end are faded too unless `fade_ends=False` (`EpisodeWriter.add_turn` fades
    every turn itself). Returns Audio with one Segment per piece (words in the joined time).
    """
    fade = int(round(fade_s * sample_rate))
    parts, segments, pos = [], [], 0  # (samples or a silence length, fade in, fade out)
    for k, piece in enumerate(pieces):
        if isinstance(piece, Pause):
            n = int(round(piece.seconds * sample_rate))
            parts.append((n, 0, 0))
        else:
            x = dsp.to_mono(piece.samples)
            if piece.sample_rate != sample_rate:
                x = dsp.resample(x, piece.sample_rate, sample_rate)
            first, last = k == 0, k == len(pieces) - 1
            parts.append((x, fade if fade_ends or not first else 0, fade if fade_ends or not last else 0))
            segments.extend(seg.shifted(pos / sample_rate) for seg in piece.segments)
            n = len(x)
        pos += n
    samples = np.empty(pos, np.float32)  # one copy of every piece, faded in place; the pauses zeroed
    pos = 0
    for x, fade_in, fade_out in parts:
        n = x if isinstance(x, int) else len(x)
        if isinstance(x, int):
            samples[pos : pos + n] = 0.0
        else:
            samples[pos : pos + n] = x
            dsp.fade_inplace(samples[pos : pos + n], fade_in, fade_out)
        pos += n
    return Audio(samples, sample_rate, segments)
