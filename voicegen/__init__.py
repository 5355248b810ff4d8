"""voicegen: fast multi-speaker text-to-speech.

    from voicegen import synthesize
    synthesize("Hello there!").save("hello.wav")
"""

from .api import get_engine, synthesize, voices
from .audio import Audio, Segment, Word
from .constants import SAMPLE_RATE
from .engine import Engine, Request
from .performance import Performance

__version__ = "0.1.0"

__all__ = [
    "Audio", "Engine", "Performance", "Request", "SAMPLE_RATE", "Segment", "Word", "get_engine", "synthesize", "voices",
]
