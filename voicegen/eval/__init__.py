"""Evaluation tools: word error rate, a Whisper transcriber, the ONNX reference (oracle) and a speaker judge.

Heavy dependencies (faster-whisper, onnxruntime, onnx, resemblyzer) are imported only when a Transcriber, an
OnnxReference or a SpeakerJudge is built; they come with ``pip install 'voicegen[test]'``.
"""

from .asr import Transcriber
from .reference import OnnxReference, ReferenceOutput, onnx_model_path
from .speaker import SpeakerJudge
from .wer import corpus_word_error_rate, normalize_for_wer, word_error_rate

__all__ = [
    "OnnxReference",
    "ReferenceOutput",
    "SpeakerJudge",
    "Transcriber",
    "corpus_word_error_rate",
    "normalize_for_wer",
    "onnx_model_path",
    "word_error_rate",
]
