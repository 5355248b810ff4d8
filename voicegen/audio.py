"""The result type of every synthesis call and how it is written to disk."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .constants import SAMPLE_RATE
from .files import atomic_write

_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


@dataclass(frozen=True)
class Word:
    """One spoken word and when it is heard, in seconds from the start of the audio."""

    text: str
    start: float
    end: float

    def shifted(self, dt: float) -> Word:
        """The same word `dt` seconds later."""
        return Word(self.text, self.start + dt, self.end + dt)


@dataclass(frozen=True)
class Segment:
    """One stretch of speech (a sentence, or a turn of a script) with its timing."""

    text: str
    start: float
    end: float
    speaker: str | None = None
    voice: str | None = None
    words: tuple[Word, ...] = ()

    def shifted(self, dt: float) -> Segment:
        """The same segment, words included, `dt` seconds later."""
        return replace(self, start=self.start + dt, end=self.end + dt, words=tuple(w.shifted(dt) for w in self.words))


@dataclass
class Audio:
    """Synthesized audio.

    Attributes:
        samples: float32 in [-1, 1]; shape (N,) for mono or (N, 2) for stereo.
        sample_rate: samples per second (24000 for the built-in model).
        segments: what is said when, in order (sentences or script turns, with words).
    """

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self):
        """ValueError for what cannot be audio here: samples not a float array shaped (N,) or (N, 1 or 2), or a
        sample rate that is not a positive integer (numpy integers too)."""
        samples, rate = self.samples, self.sample_rate
        if not isinstance(samples, np.ndarray) or not np.issubdtype(samples.dtype, np.floating):
            integer = isinstance(samples, np.ndarray) and np.issubdtype(samples.dtype, np.integer)
            kind = f"{samples.dtype} samples" if isinstance(samples, np.ndarray) else type(samples).__name__
            hint = " (integer PCM: divide by its full scale first, e.g. int16 samples / 32768)" if integer else ""
            raise ValueError(f"Audio samples must be a float numpy array in [-1, 1], shaped (N,) or (N, 2); got "
                             f"{kind}{hint}")
        if samples.ndim not in (1, 2) or samples.ndim == 2 and samples.shape[1] not in (1, 2):
            raise ValueError(f"Audio samples must be shaped (N,) for mono or (N, 2) for stereo (frames first); got "
                             f"{samples.shape}")
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ValueError(f"Audio sample_rate must be a positive integer (samples per second); got {rate!r}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else self.samples.shape[1]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the audio to `path`; the format follows the extension (.wav, .flac, .ogg, .opus, .mp3).

        The file is written under a temporary name in the same folder and renamed when complete, so an
        interrupted or failed write never leaves a half-written file at `path`.
        """
        return write_audio(path, self.samples, self.sample_rate)


def audio_format(path: str | os.PathLike) -> tuple[str, str]:
    """(soundfile format, subtype) for a path's extension, or ValueError naming the accepted ones."""
    import soundfile as sf

    ext = Path(path).suffix.lower()
    if ext not in _FORMATS:
        raise ValueError(f"cannot write {str(path)!r}: unknown extension {ext!r}; use one of {', '.join(_FORMATS)}")
    fmt, subtype = _FORMATS[ext]
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        raise ValueError(
            f"cannot write {ext} files: the installed libsndfile (soundfile {sf.__version__}, "
            f"{sf.__libsndfile_version__}) has no {fmt}/{subtype} support; use .wav or .flac"
        )
    return fmt, subtype


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Atomically write `samples` (float, (N,) or (N, C)) to `path` in the format its extension names."""
    path = Path(path)
    audio_format(path)  # an unknown or unwritable extension first
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise ValueError(f"cannot write {str(path)!r}: the samples hold NaN or infinite values")
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    return write_audio_blocks(path, [samples], sample_rate, channels)


WRITE_FRAMES = 1 << 16
"""Most frames handed to libsndfile in one write (2.7 s at 24 kHz): one write of about 2**21 frames or more into an
.ogg file overflows libvorbis's stack and kills the process (libsndfile issue 1095; 87 s of audio at 24 kHz
did, as one `sf.write`)."""


def write_audio_blocks(path: str | os.PathLike, blocks: Iterable[np.ndarray], sample_rate: int,
                       channels: int = 1) -> Path:
    """Atomically write blocks of float samples ((N,) or (N, channels) each), in order, as they come: a long
    render streams to disk and is never held whole. Format from the extension; samples clipped to [-1, 1]. If
    the blocks raise (or Ctrl-C), nothing is left at `path`."""
    import soundfile as sf

    path = Path(path)
    fmt, subtype = audio_format(path)

    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", sample_rate, channels, subtype, format=fmt) as f:
            for block in blocks:
                block = np.asarray(block, dtype=np.float32)
                for start in range(0, len(block), WRITE_FRAMES):  # bounded writes: see WRITE_FRAMES
                    f.write(np.clip(block[start : start + WRITE_FRAMES], -1.0, 1.0))

    return atomic_write(path, write)


_UNKNOWN_SIZE = 0xFFFFFFFF
"""A WAV size field's value when the size is not known while writing (a pipe): what streaming tools write there."""


def wav_header(sample_rate: int, channels: int = 1, data_bytes: int | None = None) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV file with `data_bytes` of samples; None: the RIFF and data sizes say
    "unknown" (0xFFFFFFFF), for a stream whose length is not known yet (soundfile, ffmpeg and Python's `wave`
    read such a file to the end of its data)."""
    import struct

    data = _UNKNOWN_SIZE if data_bytes is None else min(_UNKNOWN_SIZE, data_bytes)
    riff = _UNKNOWN_SIZE if data_bytes is None else min(_UNKNOWN_SIZE, 36 + data_bytes)
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * 2 * channels, 2 * channels, 16)
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
            + struct.pack("<I", data))


def stream_wav(out: BinaryIO, blocks: Iterable[np.ndarray], sample_rate: int, channels: int = 1) -> int:
    """Write blocks of float samples ((N,) or (N, channels) each) to a byte stream as 16-bit PCM WAV, each block as
    it comes (a pipe: `voicegen say -o -`) -> frames written. The header's sizes say "unknown" (0xFFFFFFFF), and
    are filled in at the end where `out` can seek back (a file). Samples are clipped to [-1, 1] and converted as
    libsndfile converts them for a .wav file (to 32-bit, rounded, then the top 16 bits), so the integers are those
    of `Audio.save` from the same floats."""
    try:
        start = out.tell() if out.seekable() else None
    except OSError:
        start = None
    out.write(wav_header(sample_rate, channels))
    frames = 0
    for block in blocks:
        x = np.clip(np.asarray(block, dtype=np.float32), -1.0, 1.0).astype(np.float64)
        pcm = (np.clip(np.rint(x * 2.0**31), -(2**31), 2**31 - 1).astype(np.int64) >> 16).astype("<i2")
        out.write(pcm.tobytes())
        out.flush()
        frames += len(pcm)
    if start is not None:
        end = out.tell()
        out.seek(start)
        out.write(wav_header(sample_rate, channels, frames * channels * 2))
        out.seek(end)
    out.flush()
    return frames
