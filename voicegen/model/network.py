"""The whole network (Kokoro-82M v1.0 compatible), split into the phases the engine batches separately.

1. Token phase (`encode`): phoneme encoder, duration predictor, text encoder. Cheap; sized by phoneme count.
2. Alignment (`align`): durations -> frames, the shared BiLSTM. Needs the frame count on the host.
3. Frame phase (`render`): pitch/energy, decoder, generator. ~95% of the compute; sized by frame count,
   free of host synchronisation and LSTMs, so it compiles into one graph and captures into CUDA graphs.

Model code only: no I/O. Weights come from `voicegen.weights`. Reading order of this package: `layers` (masked
building blocks), `acoustic/` (phoneme encoder, prosody predictor, text encoder), `vocoder/` (decoder, harmonic
source, generator, STFT), this file (the composition), `cuda_graphs` (replaying the frame phase on a GPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..constants import HIDDEN_DIM, N_TOKENS, SAMPLES_PER_FRAME, TIMBRE_DIM
from .acoustic.albert import Albert, AlbertConfig
from .acoustic.prosody import ProsodyPredictor
from .acoustic.text_encoder import TextEncoder
from .layers import beside, lengths_to_mask, to_device, wait_for
from .vocoder.decoder import Decoder
from .vocoder.noise import gaussian_noise


@dataclass(frozen=True)
class NetworkConfig:
    """The hyper-parameters of Kokoro-82M v1.0 (the only published configuration of this architecture)."""

    n_token: int = N_TOKENS
    hidden_dim: int = HIDDEN_DIM
    style_dim: int = TIMBRE_DIM  # each half of the 256-wide style vector
    n_layer: int = 3
    max_dur: int = 50
    text_encoder_kernel_size: int = 5

    def to_dict(self) -> dict:
        return asdict(self)


TEXT_ENCODER_STREAM = {"cuda": True}
"""Per device type (CUDA only): run the token phase's text encoder (convolutions and a BiLSTM, independent of ALBERT
and the duration predictor) on a second CUDA stream, so that it overlaps them and the read of the durations that
follows them; the alignment waits for it (`TokenPhase.ready`). On by default on CUDA: the token phase is a few chains
of small LSTM steps that leave most of the device idle; on an H200 (benchmarks/RESULTS.md, seventeenth session),
with `layers.ONE_WAY_BILSTM` it took time to first audio from 28 to 24 ms (the corpus 1,793x -> 1,811x real time,
within the run's spread). Not while autograd records (voice fitting) or a graph is being captured."""


@dataclass
class TokenPhase:
    """What the token phase hands to the alignment.

    durations: (B, T) int64 frames per token (0 on padding); d: (B, T, 640) duration-encoder features;
    t_en: (B, 512, T) text-encoder features; ready: None, or (`TEXT_ENCODER_STREAM`) a CUDA event that the stream
    reading t_en must wait for first (`wait`).
    """

    durations: torch.Tensor
    d: torch.Tensor
    t_en: torch.Tensor
    ready: torch.cuda.Event | None = None

    def wait(self) -> torch.Tensor:
        """t_en, once the current stream has been told to wait for the text encoder's stream (a no-op without it)."""
        wait_for(self.ready, self.t_en.device)
        self.ready = None
        return self.t_en


@dataclass
class FramePhase:
    """Inputs of the frame phase: x (B, 512, F) shared-BiLSTM features, asr (B, 512, F) aligned text features,
    frame_lengths (B,) int64 on the CPU (valid 40 Hz frames per item)."""

    x: torch.Tensor
    asr: torch.Tensor
    frame_lengths: torch.Tensor


class KokoroNetwork(nn.Module):
    """Phoneme tokens + style -> 24 kHz audio. Submodule names match Kokoro's checkpoints."""

    def __init__(self, config: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.config = config
        self.bert = Albert(AlbertConfig(vocab_size=config.n_token))
        self.bert_encoder = nn.Linear(768, config.hidden_dim)
        self.predictor = ProsodyPredictor(config.style_dim, config.hidden_dim, config.n_layer, config.max_dur)
        self.text_encoder = TextEncoder(config.hidden_dim, config.text_encoder_kernel_size, config.n_layer, config.n_token)
        self.decoder = Decoder(config.hidden_dim, config.style_dim)

    def encode(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        style: torch.Tensor,
        speed: torch.Tensor,
        durations: torch.Tensor | None = None,
        bert=None,
    ) -> TokenPhase:
        """tokens: (B, T) int64 with the wrapping zeros, padded with 0; lengths: (B,) int64 (wrapping zeros
        included) on the CPU, or on tokens' device when the BiLSTMs read nothing from the host
        (`layers.reads_no_host`: then nothing here reads the device, so the call can be captured in a CUDA graph);
        style: (B, 256); speed: (B,);
        durations: (B, T) frames per token to use instead of the predicted ones (0 on padding);
        bert: what computes ALBERT's output from (tokens, valid), default `self.bert` (the renderer passes a CUDA
        graph's replay: `layers.ALBERT_GRAPHS`) -> TokenPhase."""
        device = tokens.device
        valid = to_device(torch.arange(tokens.shape[1], device=lengths.device)[None, :] < lengths[:, None], device)
        mask = valid[..., None].float()  # (B, T, 1)
        concurrent = TEXT_ENCODER_STREAM.get(device.type, False) and not torch.is_grad_enabled()
        if concurrent:  # the text encoder first, on its own stream, overlapping what follows
            t_en, ready = beside(device, 1, self.text_encoder, tokens, lengths, mask.transpose(1, 2))
        bert = (bert or self.bert)(tokens, valid)  # (B, T, 768)
        d_en = self.bert_encoder(bert) * mask  # (B, T, 512)
        predicted, d = self.predictor.durations(d_en, style[:, TIMBRE_DIM:], lengths, mask, speed)
        durations = predicted if durations is None else durations.to(predicted)
        if not concurrent:
            t_en, ready = self.text_encoder(tokens, lengths, mask.transpose(1, 2)), None
        return TokenPhase(durations, d, t_en, ready)

    def align(self, phase: TokenPhase, style: torch.Tensor, frames: int | None = None) -> FramePhase:
        """Expand token features to frames and run the shared BiLSTM.

        frames: pad to this many 40 Hz frames (a bucket size), at least the longest item; default the longest.
        Reads the durations on the host once (the frame count decides tensor sizes).
        """
        durations = phase.durations
        lengths = durations.sum(1)  # on the device, for the mask: no copy back to it
        frame_lengths = lengths.cpu()
        frames = int(frame_lengths.max()) if frames is None else frames
        if frames < int(frame_lengths.max()):
            raise ValueError(f"frames={frames} is shorter than the longest item ({int(frame_lengths.max())} frames)")
        ends = torch.cumsum(durations, dim=1)  # (B, T)
        f = torch.arange(frames, device=durations.device)
        token = torch.searchsorted(ends, f.expand(durations.shape[0], -1).contiguous(), right=True)  # (B, F)
        token = token.clamp(max=durations.shape[1] - 1)
        valid = lengths_to_mask(lengths, frames)  # (B, 1, F)
        en = torch.gather(phase.d, 1, token[..., None].expand(-1, -1, phase.d.shape[-1])) * valid.transpose(1, 2)
        t_en = phase.wait()
        asr = torch.gather(t_en, 2, token[:, None, :].expand(-1, t_en.shape[1], -1)) * valid
        x = self.predictor.shared(en, frame_lengths).transpose(1, 2)  # (B, 512, F)
        return FramePhase(x * valid, asr, frame_lengths)

    def render(
        self,
        x: torch.Tensor,
        asr: torch.Tensor,
        style: torch.Tensor,
        frame_lengths: torch.Tensor,
        seeds: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The frame phase. x, asr: (B, 512, F); style: (B, 256); frame_lengths: (B,) int64 on x's device;
        seeds: (B,) int64 seeds of each item's source noise (`vocoder.noise.gaussian_noise`; a negative seed: no
        noise for that item), or None: no noise at all; pitch: (B,) semitones to shift each item's predicted F0 by
        (scales F0 by 2 ** (pitch / 12) before the decoder and the harmonic source; durations are untouched)
        -> audio (B, 600F), zero past each item's 600 * length samples."""
        frames = x.shape[-1]
        mask, mask2 = lengths_to_mask(frame_lengths, frames), lengths_to_mask(2 * frame_lengths, 2 * frames)
        # pitch and energy in float32 under any autocast: F0 steers the harmonic source, and bfloat16 rounds 200 Hz
        # to 1 Hz steps (with conv_post, the two layers that carry reduced precision's error; <1% of the FLOPs)
        with torch.autocast(x.device.type, enabled=False):
            f0, n = self.predictor.pitch_energy(x.float(), style[:, TIMBRE_DIM:].float(), mask, mask2)
        if pitch is not None:
            f0 = f0 * torch.exp2(pitch.to(f0.dtype) / 12)[:, None]  # 0 semitones: a factor of exactly 1
        noise = None
        if seeds is not None:  # drawn here, from each item's seed: no host work, fused and graph-captured
            noise = gaussian_noise(seeds, frames * SAMPLES_PER_FRAME) * (seeds >= 0)[:, None]  # (B, 600F)
        return self.decoder(asr, f0, n, style[:, :TIMBRE_DIM], frame_lengths, noise)

    def forward(  # a signature of the same shape as render's, deliberately: forward is the three phases in a row
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        style: torch.Tensor,
        speed: torch.Tensor,
        seeds: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All three phases, eagerly. Same inputs as `encode`; seeds: (B,) int64 noise seeds or None (no noise)
        -> (audio (B, 600F), samples per item (B,), durations (B, T))."""
        phase = self.encode(tokens, lengths, style, speed, durations)
        frames = self.align(phase, style)
        audio = self.render(frames.x, frames.asr, style, frames.frame_lengths.to(tokens.device), seeds)
        return audio, frames.frame_lengths * SAMPLES_PER_FRAME, phase.durations
