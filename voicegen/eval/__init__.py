"""Evaluation tools: word error rate, a Whisper transcriber and the ONNX reference (oracle).

Heavy dependencies (faster-whisper, onnxruntime, onnx) are imported only when a Transcriber or an
OnnxReference is built; they come with ``pip install 'voicegen[test]'``.
"""

from .asr import Transcriber
from .reference import OnnxReference, ReferenceOutput, onnx_model_path
from .wer import corpus_word_error_rate, normalize_for_wer, word_error_rate

__all__ = [
    "OnnxReference",
    "ReferenceOutput",
    "Transcriber",
    "corpus_word_error_rate",
    "normalize_for_wer",
    "onnx_model_path",
    "word_error_rate",
]
