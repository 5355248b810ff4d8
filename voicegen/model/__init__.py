"""The network: a batch-native, Kokoro-82M v1.0 compatible text-to-speech model in PyTorch (no I/O).

Read it top to bottom: `layers` (masked building blocks), `acoustic/` (phoneme encoder, prosody predictor,
text encoder), `vocoder/` (decoder, harmonic source, generator, STFT), `network` (the three phases the engine
batches), `fft_conv` (the vocoder's long convolutions through the FFT, for the CPU), `cuda_graphs` (replaying the
frame phase on a GPU).
"""

from .network import FramePhase, KokoroNetwork, NetworkConfig, TokenPhase

__all__ = ["FramePhase", "KokoroNetwork", "NetworkConfig", "TokenPhase"]
