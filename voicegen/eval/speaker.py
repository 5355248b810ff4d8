"""Speaker similarity: an independent judge of whose voice a clip is in.

Resemblyzer's GE2E voice encoder (a 3-layer LSTM over 40-band mel frames, trained for speaker verification) maps a
clip to a unit 256-dimensional embedding; the cosine of two embeddings is their speaker similarity (about 0.95+
for two clips of one voice, lower for different voices). Its weights ship inside its wheel, so it works
offline. It shares nothing with voicegen's network, which is why tests and benchmarks use it to judge fitted
voices, and the fitting objective (`voicegen.fit`) never does: a fit cannot game a judge it never sees.

resemblyzer (and its dependencies librosa and webrtcvad) are test extras, imported only when a `SpeakerJudge`
is built: ``pip install 'voicegen[test]'``. resemblyzer imports ``pkg_resources``, so setuptools stays below 81.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..constants import SAMPLE_RATE
from ..dsp import resample, to_mono

__all__ = ["JUDGE_SAMPLE_RATE", "SpeakerJudge", "cosine"]

JUDGE_SAMPLE_RATE = 16000
"""The encoder's input rate in Hz."""

_INSTALL_HINT = "pip install 'voicegen[test]'"


class SpeakerJudge:
    """Resemblyzer's voice encoder on the CPU. Build once, call many times.

    `embed` one clip, `embed_speaker` several clips of one speaker (the normalized mean of their embeddings),
    `similarity` of two clips or clip lists (cosine, in [-1, 1]; higher is more alike), `cosine` of two embeddings.
    """

    def __init__(self, device: str = "cpu"):
        import warnings

        try:
            with warnings.catch_warnings():  # webrtcvad imports pkg_resources, which warns on import
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as e:
            raise ImportError(f"the speaker judge needs resemblyzer (and setuptools < 81): {_INSTALL_HINT}") from e
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # it prints a 'loaded' line
            self._encoder = VoiceEncoder(device)
        self._preprocess = preprocess_wav

    def embed(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """(N,) or (N, C) float audio at `sample_rate` -> (256,) unit embedding.

        The clip is averaged to mono, resampled to 16 kHz (voicegen.dsp.resample), brought to -30 dBFS and has
        long silences trimmed (resemblyzer's own preprocessing), then embedded over 1.6 s windows.
        ValueError if less than about 0.2 s of speech remains.
        """
        wav = resample(to_mono(samples), sample_rate, JUDGE_SAMPLE_RATE).astype(np.float32)
        wav = self._preprocess(np.clip(wav, -1.0, 1.0))
        if len(wav) < JUDGE_SAMPLE_RATE // 5:
            raise ValueError(f"too little speech to judge: {len(wav) / JUDGE_SAMPLE_RATE:.2f} s after trimming silence")
        return np.asarray(self._encoder.embed_utterance(wav), dtype=np.float64)

    def embed_speaker(self, clips: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Several clips of one speaker -> (256,) unit embedding: the normalized mean of the clips' embeddings."""
        if not len(clips):
            raise ValueError("embed_speaker needs at least one clip")
        mean = np.mean([self.embed(c, sample_rate) for c in clips], axis=0)
        return mean / np.linalg.norm(mean)

    def similarity(self, a, b, sample_rate: int = SAMPLE_RATE) -> float:
        """Cosine similarity of two speakers, each given as one clip (N,) or a list of clips of that speaker."""
        def embed(x):
            return self.embed_speaker(x, sample_rate) if isinstance(x, (list, tuple)) else self.embed(x, sample_rate)

        return cosine(embed(a), embed(b))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (256,) from `SpeakerJudge.embed` or `embed_speaker`."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
