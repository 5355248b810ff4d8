"""Numbers that define the network's signal chain; named once, used everywhere."""

SAMPLE_RATE = 24000
"""Output sample rate in Hz."""

MAX_PHONEMES = 510
"""Most phoneme tokens in one item (the style table has one row per length)."""

PAD_ID = 0
"""Token id of padding; it also wraps every item as BOS/EOS."""

STYLE_DIM = 256
"""Width of a voice's style vector: [:128] timbre (decoder), [128:] prosody (predictor)."""

SAMPLES_PER_FRAME = 600
"""Audio samples per duration frame (40 Hz at 24 kHz)."""

SAMPLES_PER_F0_FRAME = 300
"""Audio samples per F0/energy frame (80 Hz)."""
