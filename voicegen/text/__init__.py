"""Text frontend: written text -> normalized words -> Kokoro phoneme chunks with word spans.

Works without the model or its weights; espeak-ng (from ``espeakng_loader``) is loaded on first use.
"""

from voicegen.text.frontend import Chunk, Frontend, WordSpan
from voicegen.text.normalize import normalize
from voicegen.text.vocab import VOCAB

__all__ = ["VOCAB", "Chunk", "Frontend", "WordSpan", "normalize"]
