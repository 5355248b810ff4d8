"""voicegen: fast multi-speaker text-to-speech.

    from voicegen import synthesize
    synthesize("Hello there!").save("hello.wav")
"""

from .api import fit_voice, get_engine, synthesize, voices
from .audio import Audio, Segment, Word
from .constants import SAMPLE_RATE
from .engine import Engine, Request
from .performance import Performance
from .weights import Voice

__version__ = "0.1.0"

__all__ = [
    "Audio", "Engine", "Performance", "Request", "SAMPLE_RATE", "Segment", "Voice", "Word", "fit_voice", "get_engine",
    "synthesize", "voices",
]
