"""The vocoder (iSTFTNet): frame-rate features, pitch and energy in; 24 kHz audio out."""
