"""Audio encoding for responses, whole or streamed: OpenAI's `response_format`s mp3, opus, aac, flac, wav, pcm.

Each request gets one `Encoder`; `write(samples)` takes the next float32 chunk ((N,) mono or (N, C)) and returns the bytes that are final
(sent to the client at once when streaming), `close()` returns the rest. Concatenated, they form one valid file.

- pcm: raw signed 16-bit little-endian, mono, 24 kHz (OpenAI's pcm), no header.
- wav: 16-bit PCM. Streamed, the header is written first with the RIFF and data sizes set to 0xFFFFFFFF (unknown
  length, as streaming servers do; soundfile, ffmpeg and Python's `wave` read to the end of data). Whole, the
  sizes are exact.
- mp3 (libsndfile >= 1.1 with LAME, via soundfile): constant bitrate, about 80 kb/s at 24 kHz. libsndfile writes
  a silent placeholder frame first and fills in the LAME info tag (encoder delay, length) when the file is closed;
  a stream has already sent that frame, so a streamed mp3 keeps the silent frame and decoders cannot trim the
  encoder delay: it starts about 50 ms later than the whole file. Constant bitrate keeps it seekable.
- opus (Ogg Opus via libsndfile): streamed page by page; nothing is rewritten at the end.
- flac (libsndfile): written whole, because its header (length, checksum) is completed at the end; a streamed
  flac response arrives in one piece when the audio is complete.
- aac (ADTS, via PyAV, in the `server` extra): streamed frame by frame. Without PyAV, aac is refused with 400.
"""

from __future__ import annotations

import io
import json

import numpy as np

from ..audio import wav_header
from ..constants import SAMPLE_RATE
from .errors import bad_request

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
"""OpenAI's response formats, in its order; mp3 is its default."""

MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

STREAMABLE = frozenset({"mp3", "opus", "aac", "wav", "pcm"})
"""Formats whose bytes leave the server chunk by chunk; flac is sent when complete."""

_SOUNDFILE = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}

MP3_COMPRESSION = 0.5
"""libsndfile's MP3 compression level (0 best .. 1 smallest); at 24 kHz mono, constant bitrate, ~80 kb/s."""

AAC_BITRATE = 64000
"""AAC bits per second (mono speech at 24 kHz)."""


def check_format(fmt: str) -> None:
    """400 (OpenAI's shape, param response_format) if `fmt` is not a format or this machine cannot write it."""
    if fmt not in FORMATS:
        raise bad_request(f"'response_format' must be one of {', '.join(FORMATS)}; got {json.dumps(fmt)[:40]}", "response_format")
    if fmt in _SOUNDFILE:
        import soundfile as sf

        major, subtype = _SOUNDFILE[fmt]
        if major not in sf.available_formats() or subtype not in sf.available_subtypes(major):
            raise bad_request(
                f"this server cannot write {fmt}: its libsndfile ({sf.__libsndfile_version__}) has no {major}/{subtype} "
                f"support (mp3 needs libsndfile >= 1.1); use one of wav, flac, pcm", "response_format", "unsupported_format")
        if fmt == "mp3" and not hasattr(sf.SoundFile, "_set_bitrate_mode"):
            raise bad_request(f"mp3 needs soundfile >= 0.13 (installed: {sf.__version__}): pip install 'voicegen[server]'",
                              "response_format", "unsupported_format")
    if fmt == "aac":
        try:
            import av  # noqa: F401
        except ImportError:
            raise bad_request("aac needs PyAV, which this server lacks: pip install 'voicegen[server]' "
                              "(or ask for mp3, opus, flac, wav or pcm)", "response_format", "unsupported_format") from None


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> int16 (x 32767, rounded): one conversion for pcm, wav and flac alike."""
    return (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")


def to_pcm16(samples: np.ndarray) -> bytes:
    """float samples in [-1, 1], (N,) or (N, C) -> signed 16-bit little-endian bytes (2N or 2NC, interleaved)."""
    return to_int16(samples).tobytes()


class Encoder:
    """Base: `write(samples) -> bytes` (final bytes so far), `close() -> bytes` (the rest). float32 at
    `sample_rate` with `channels` channels ((N,) when mono, else (N, channels)). Not thread-safe; one per response."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1):
        self.sample_rate = sample_rate
        self.channels = channels

    def write(self, samples: np.ndarray) -> bytes:
        raise NotImplementedError

    def close(self) -> bytes:
        return b""


class PcmEncoder(Encoder):
    def write(self, samples):
        return to_pcm16(samples)


class WavStreamEncoder(Encoder):
    """WAV with an unknown-length header first, then PCM as it comes."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1):
        super().__init__(sample_rate, channels)
        self._header = wav_header(sample_rate, channels)  # sizes unknown

    def write(self, samples):
        head, self._header = self._header, b""
        return head + to_pcm16(samples)

    def close(self):
        head, self._header = self._header, b""
        return head


class _Sink(io.RawIOBase):
    """A seekable in-memory file that hands out its bytes in order: `take()` returns what was written since the
    last take and freezes it; a later write into frozen bytes (a header filled in at close) is dropped there."""

    def __init__(self):
        super().__init__()
        self._buf = bytearray()
        self._pos = 0
        self._sent = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def readable(self):
        return False

    def write(self, data) -> int:
        data = bytes(data)
        end = self._pos + len(data)
        if end > len(self._buf):
            self._buf.extend(bytes(end - len(self._buf)))
        lo = max(self._pos, self._sent)
        if lo < end:
            self._buf[lo:end] = data[lo - self._pos :]
        self._pos = end
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        self._pos = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence] + offset
        return self._pos

    def tell(self):
        return self._pos

    def take(self) -> bytes:
        out = bytes(self._buf[self._sent :])
        self._sent = len(self._buf)
        return out


class SoundfileEncoder(Encoder):
    """libsndfile formats. Streaming: bytes leave as libsndfile produces them; whole: one file at `close()`."""

    def __init__(self, fmt: str, streaming: bool, sample_rate: int = SAMPLE_RATE, channels: int = 1):
        import soundfile as sf

        super().__init__(sample_rate, channels)
        major, subtype = _SOUNDFILE[fmt]
        self._streaming = streaming and fmt in STREAMABLE
        self._whole = io.BytesIO() if not self._streaming else None
        self._sink = _Sink() if self._streaming else None
        extra = {"compression_level": MP3_COMPRESSION, "bitrate_mode": "CONSTANT"} if fmt == "mp3" else {}
        self._file = sf.SoundFile(self._sink or self._whole, "w", samplerate=sample_rate, channels=channels, format=major,
                                  subtype=subtype, **extra)
        self._int16 = subtype == "PCM_16"  # lossless: the same 16-bit samples as pcm (libsndfile scales otherwise)

    def write(self, samples):
        self._file.write(to_int16(samples) if self._int16 else np.clip(np.asarray(samples, np.float32), -1.0, 1.0))
        return self._sink.take() if self._sink is not None else b""

    def close(self):
        if self._file.closed:
            return b""
        self._file.close()
        return self._sink.take() if self._sink is not None else self._whole.getvalue()


class AacEncoder(Encoder):
    """AAC-LC in ADTS frames (a streamable container) through PyAV's bundled FFmpeg encoder."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1):
        import av

        super().__init__(sample_rate, channels)
        self._layout = "mono" if channels == 1 else "stereo"
        self._out = _Sink()
        self._container = av.open(self._out, "w", format="adts")
        self._stream = self._container.add_stream("aac", rate=sample_rate, layout=self._layout)
        self._stream.bit_rate = AAC_BITRATE
        self._pts = 0
        self._closed = False

    def write(self, samples):
        import av

        samples = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
        if len(samples):
            planar = samples[None, :] if samples.ndim == 1 else np.ascontiguousarray(samples.T)  # (C, N)
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=self._layout)
            frame.sample_rate, frame.pts = self.sample_rate, self._pts
            self._pts += len(samples)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._out.take()

    def close(self):
        if self._closed:
            return b""
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._out.take()


def encoder(fmt: str, streaming: bool = True, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> Encoder:
    """The encoder for a response format (checked with `check_format` first). `streaming=False` writes exact
    headers (wav sizes, the mp3 info tag) at the cost of sending nothing before the end."""
    check_format(fmt)
    if fmt == "pcm":
        return PcmEncoder(sample_rate, channels)
    if fmt == "wav" and streaming:
        return WavStreamEncoder(sample_rate, channels)
    if fmt == "aac":
        return AacEncoder(sample_rate, channels)
    return SoundfileEncoder(fmt, streaming, sample_rate, channels)


def encode(samples: np.ndarray, fmt: str, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A whole file of `samples` ((N,) or (N, C) float32) in `fmt`."""
    samples = np.asarray(samples, np.float32)
    enc = encoder(fmt, streaming=False, sample_rate=sample_rate, channels=1 if samples.ndim == 1 else samples.shape[1])
    return enc.write(samples) + enc.close()
