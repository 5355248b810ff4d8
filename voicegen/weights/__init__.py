"""Weights and voices: the only place that reads model files."""

from .store import WeightsError, builtin_onnx_path, cache_dir, load_network, load_state, load_strict
from .voices import VoiceBank, VoiceError, as_voice_table, builtin_voices, load_voice_file, parse_blend, style_for

__all__ = [
    "VoiceBank",
    "VoiceError",
    "WeightsError",
    "as_voice_table",
    "builtin_onnx_path",
    "builtin_voices",
    "cache_dir",
    "load_network",
    "load_state",
    "load_strict",
    "load_voice_file",
    "parse_blend",
    "style_for",
]
