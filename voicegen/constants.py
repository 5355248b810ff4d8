"""Numbers that define the network and its signal chain; named once, used everywhere."""

SAMPLE_RATE = 24000
"""Output sample rate in Hz."""

MAX_PHONEMES = 510
"""Most phoneme tokens in one item (the style table has one row per length)."""

N_TOKENS = 178
"""Size of the token vocabulary (ids 0..177; 114 of them are used)."""

PAD_ID = 0
"""Token id of padding; it also wraps every item as BOS/EOS."""

STYLE_DIM = 256
"""Width of a voice's style vector: [:TIMBRE_DIM] timbre (decoder), [TIMBRE_DIM:] prosody (predictor)."""

TIMBRE_DIM = STYLE_DIM // 2
"""Width of each half of the style vector."""

HIDDEN_DIM = 512
"""Channels of the frame-aligned features that the frame phase takes (x and asr: (B, HIDDEN_DIM, frames))."""

SAMPLES_PER_FRAME = 600
"""Audio samples per duration frame (40 Hz at 24 kHz)."""

SPEED_RANGE = (0.25, 4.0)
"""Accepted speaking rates (1.0 is the voice's own)."""

PITCH_RANGE = (-12.0, 12.0)
"""Accepted pitch shifts in semitones (0 is the voice's own; 12 is an octave)."""
