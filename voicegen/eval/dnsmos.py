"""DNSMOS P.835: a second, independent quality judge (Microsoft's non-intrusive speech-quality predictor).

Whisper says whether the words survive; DNSMOS predicts what listeners would rate the sound, with no reference
signal: SIG (speech signal quality), BAK (background noise) and OVRL (overall quality), each on the 1-5 MOS
scale. The ONNX model ships inside the PyPI package ``speechmos`` (``dnsmos_models/sig_bak_ovr.onnx``); it is
read from there with ``importlib.resources`` and run with onnxruntime. Both are test extras, imported only when
a :class:`Dnsmos` is built. speechmos's own ``run`` also needs librosa (for the P.808 model, not used here);
this module calls neither.

The scoring follows the DNSMOS reference script: audio at 16 kHz, shorter clips repeated until they fill the
model's 9.01 s input, one 9.01 s window per second of audio, the model's raw outputs mapped to MOS by its
published polynomials, and the mean over windows.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dsp import resample

__all__ = ["Dnsmos", "DnsmosScore", "DNSMOS_SAMPLE_RATE"]

DNSMOS_SAMPLE_RATE = 16000
"""The model's input rate in Hz."""
INPUT_SECONDS = 9.01
"""Length of one model window; clips are scored in windows of this length, one per second of audio."""
_INPUT_SAMPLES = int(INPUT_SECONDS * DNSMOS_SAMPLE_RATE)  # 144160
_MODEL = "dnsmos_models/sig_bak_ovr.onnx"
_INSTALL_HINT = "pip install 'voicegen[test]'"

# Raw model outputs -> MOS (the reference script's polynomials for the non-personalized model), highest power first.
_POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
_POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
_POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)


@dataclass(frozen=True)
class DnsmosScore:
    """Predicted mean opinion scores (1 = bad .. 5 = excellent) of one clip.

    Attributes:
        overall: OVRL, the overall quality.
        signal: SIG, the quality of the speech itself.
        background: BAK, how unobtrusive the background (noise) is.
    """

    overall: float
    signal: float
    background: float


def dnsmos_model_path() -> Path:
    """Path of ``sig_bak_ovr.onnx`` inside the installed ``speechmos`` package."""
    try:
        root = importlib.resources.files("speechmos")
    except ModuleNotFoundError as e:
        raise ImportError(f"DNSMOS needs the 'speechmos' package (it ships the ONNX model): {_INSTALL_HINT}") from e
    path = Path(str(root / _MODEL))
    if not path.is_file():
        raise FileNotFoundError(f"no {_MODEL} in {Path(str(root))}; reinstall speechmos ({_INSTALL_HINT})")
    return path


def _windows(audio: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz -> (W, 144160) model windows, as the reference script cuts them: a clip shorter than
    one window is doubled until it fills one; then one window starts every second."""
    if len(audio) == 0:
        raise ValueError("DNSMOS needs some audio; got an empty clip")
    while len(audio) < _INPUT_SAMPLES:
        audio = np.concatenate([audio, audio])
    count = int(np.floor(len(audio) / DNSMOS_SAMPLE_RATE) - INPUT_SECONDS) + 1
    # The reference computes each window's end as int((i + 9.01) * 16000) in floating point and skips windows
    # that come out one sample short; kept, so that scores equal the published script's.
    starts = [i * DNSMOS_SAMPLE_RATE for i in range(count)
              if int((i + INPUT_SECONDS) * DNSMOS_SAMPLE_RATE) - i * DNSMOS_SAMPLE_RATE >= _INPUT_SAMPLES]
    return np.stack([audio[s : s + _INPUT_SAMPLES] for s in starts])


class Dnsmos:
    """DNSMOS P.835 (SIG, BAK, OVRL) on onnxruntime, CPU. Build once, call many times.

    Args:
        threads: onnxruntime intra-op threads; default ``torch.get_num_threads()``.
    """

    sample_rate = DNSMOS_SAMPLE_RATE

    def __init__(self, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError(f"DNSMOS needs onnxruntime: {_INSTALL_HINT}") from e
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.model_path = dnsmos_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def score(self, samples: np.ndarray, sample_rate: int) -> DnsmosScore:
        """Scores of one clip: ``samples`` (N,) float audio in [-1, 1] at ``sample_rate`` Hz (or (N, C): averaged).
        ValueError for an empty clip."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        if audio.ndim != 1:
            raise ValueError(f"DNSMOS scores (N,) or (N, C) audio; got shape {audio.shape}")
        audio = resample(audio, sample_rate, DNSMOS_SAMPLE_RATE)
        raw = self._session.run(None, {self._input: _windows(audio)})[0]  # (W, 3): sig, bak, ovrl
        sig, bak, ovrl = (np.polyval(p, raw[:, k]).mean() for k, p in enumerate((_POLY_SIG, _POLY_BAK, _POLY_OVRL)))
        return DnsmosScore(overall=float(ovrl), signal=float(sig), background=float(bak))

    __call__ = score

    def mean(self, clips: Sequence[np.ndarray], sample_rate: int) -> DnsmosScore:
        """Mean of each score over several clips (each clip weighs the same)."""
        if not clips:
            raise ValueError("DNSMOS mean needs at least one clip")
        scores = [self.score(c, sample_rate) for c in clips]
        return DnsmosScore(*(float(np.mean([getattr(s, f) for s in scores])) for f in ("overall", "signal", "background")))
