"""The iSTFTNet generator: upsampling convolutions with AdaIN/snake residual blocks, steered by the harmonic
source, ending in a magnitude-and-phase spectrogram that an inverse STFT turns into audio.

Under autocast (reduced precision) the source, its STFT, conv_post and the inverse STFT run in float32; the
upsampling and residual blocks (~94% of the compute) in the reduced dtype, where they cost almost no accuracy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...constants import SAMPLE_RATE
from ..layers import AdaIN1d, Conv1d, ConvTranspose1d, lengths_to_mask as _mask
from .source import SourceModuleHnNSF
from .stft import istft, stft


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


SNAKE_SLICES = 4
"""Channel slices `snake` works in, eagerly without autograd."""


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x + sin(alpha x)^2 / alpha, channel-wise alpha (1, C, 1). snake(0) = 0, so padding stays zero.

    Eagerly without autograd, x is overwritten with the result (callers pass a fresh tensor), SNAKE_SLICES channel
    slices at a time: the same values with a temporary of 1/SNAKE_SLICES of x instead of four of its size (full-size
    temporaries are most of the CPU frame phase's peak memory). Compiled, the plain formula (fused, no temporaries)."""
    if torch.is_grad_enabled() or torch.compiler.is_compiling():  # compiled: inductor fuses it, no temporaries
        return x + torch.sin(alpha * x).pow(2) / alpha
    step = -(-x.shape[1] // SNAKE_SLICES)
    for lo in range(0, x.shape[1], step):
        part, a = x[:, lo : lo + step], alpha[:, lo : lo + step]
        part.add_((a * part).sin_().pow_(2).div_(a))
    return x


class AdaINResBlock1(nn.Module):
    """Three dilated residual units: AdaIN -> snake -> dilated conv -> AdaIN -> snake -> conv."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], style_dim: int):
        super().__init__()
        self.convs1 = nn.ModuleList(
            Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1)) for _ in dilations
        )
        self.adain1 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.adain2 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.alpha1 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)
        self.alpha2 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)

    def forward(self, x: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T), s: (B, S), mask: (B, 1, T) -> (B, C, T)."""
        lean = not torch.is_grad_enabled()  # then add in place once x is this block's own tensor
        for i, (c1, c2, n1, n2, a1, a2) in enumerate(
            zip(self.convs1, self.convs2, self.adain1, self.adain2, self.alpha1, self.alpha2)
        ):
            h = c1(snake(n1(x, s, mask), a1))
            h = c2(snake(n2(h, s, mask), a2))
            x = x.add_(h) if lean and i > 0 else x + h
        return x


class Generator(nn.Module):
    def __init__(
        self,
        style_dim: int = 128,
        resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11),
        upsample_rates: tuple[int, ...] = (10, 6),
        upsample_initial_channel: int = 512,
        resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        upsample_kernel_sizes: tuple[int, ...] = (20, 12),
        n_fft: int = 20,
        hop: int = 5,
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        if len(upsample_rates) != 2:
            raise ValueError(f"the source/noise wiring is written for two upsampling stages; got {upsample_rates}")
        self.n_fft, self.hop = n_fft, hop
        self.upsample_rates = tuple(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        self.frame_samples = math.prod(upsample_rates) * hop  # audio samples per input frame (300)
        self.m_source = SourceModuleHnNSF(sample_rate, self.frame_samples, harmonics=8, voiced_threshold=10.0)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            for ks, ds in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(c_out, ks, ds, style_dim))
            if i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1 :])
                self.noise_convs.append(Conv1d(n_fft + 2, c_out, stride * 2, stride, padding=(stride + 1) // 2))
                self.noise_res.append(AdaINResBlock1(c_out, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(Conv1d(n_fft + 2, c_out, 1))
                self.noise_res.append(AdaINResBlock1(c_out, 11, (1, 3, 5), style_dim))
        self.conv_post = Conv1d(c_out, n_fft + 2, 7, 1, padding=3)

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, f0: torch.Tensor, lengths: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """x: (B, C, F) features at 80 Hz, s: (B, 128) timbre style, f0: (B, F) Hz, lengths: (B,) valid frames,
        noise: (B, F * 300) unit Gaussian or None -> audio (B, F * 300), zero past each item's end."""
        frames = x.shape[-1]
        samples = frames * self.frame_samples
        bins = self.n_fft // 2 + 1
        with torch.autocast(x.device.type, enabled=False):  # phase and STFT want float32
            source = self.m_source(f0.float(), lengths, noise)  # (B, N)
            mag, phase = stft(source, lengths * self.frame_samples, self.n_fft, self.hop)
            har = torch.cat([mag, phase], dim=1)  # (B, n_fft + 2, N / hop + 1)
        stft_frames = lengths * (self.frame_samples // self.hop) + 1
        stft_mask = _mask(stft_frames, har.shape[-1])
        har = har * stft_mask
        rate = 1
        mask = _mask(lengths, frames)
        lean = not torch.is_grad_enabled()  # then sums and activations overwrite tensors this method owns
        for i, u in enumerate(self.upsample_rates):
            rate *= u
            x = F.leaky_relu(x, 0.1) * mask
            last = i == len(self.upsample_rates) - 1
            out_mask = stft_mask if last else _mask(lengths * rate, frames * rate)
            x_source = self.noise_res[i](self.noise_convs[i](har), s, out_mask)
            x = self.ups[i](x)
            if last:
                x = F.pad(x, (1, 0), mode="reflect")  # frames * rate + 1, aligned with the STFT frames
            x = x.add_(x_source) if lean else x + x_source  # x: the up-sampling's fresh output
            del x_source
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            if not lean:
                x = sum(block(x, s, out_mask) for block in blocks) / self.num_kernels
            else:  # the same sum, accumulated in place: one block's output alive at a time
                total = blocks[0](x, s, out_mask)
                for block in blocks[1:]:
                    total.add_(block(x, s, out_mask))
                x = total.div_(self.num_kernels)
            mask = out_mask
        # float32 from conv_post on: its outputs are a log-magnitude and a phase, where bfloat16's 8-bit mantissa
        # is an audible error (alone it moved the audio 0.14 of bf16's 0.26 nats; benchmarks/RESULTS.md)
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            x = self.conv_post(F.leaky_relu_(x, 0.01).mul_(mask) if lean else F.leaky_relu(x, 0.01) * mask)
            audio = istft(torch.exp(x[:, :bins]), torch.sin(x[:, bins:]), mask, self.n_fft, self.hop)
        return audio[:, :samples] * _mask(lengths * self.frame_samples, samples)[:, 0]

