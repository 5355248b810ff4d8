"""Weights and voices: the only place that reads model files."""

from .store import WeightsError, builtin_onnx_path, cache_dir, data_dir, load_network, load_state, load_strict
from .voice_file import Voice, check_pitch, install_voice, read_voice, user_voice_dir
from .voices import VoiceBank, VoiceError, as_voice_table, builtin_voices, load_voice_file, parse_blend, style_for

__all__ = [
    "Voice",
    "VoiceBank",
    "VoiceError",
    "WeightsError",
    "as_voice_table",
    "builtin_onnx_path",
    "builtin_voices",
    "cache_dir",
    "check_pitch",
    "data_dir",
    "install_voice",
    "load_network",
    "load_state",
    "load_strict",
    "load_voice_file",
    "parse_blend",
    "read_voice",
    "style_for",
    "user_voice_dir",
]
