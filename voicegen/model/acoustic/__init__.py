"""The acoustic model: phonemes and a style vector in; durations, pitch and energy out."""
