"""Long 1-D convolutions computed as products of spectra (FFT overlap-save), for float32 on the CPU.

Why: the vocoder's residual convolutions (kernels of 7 and 11 taps, some dilated) are most of the CPU's work, and
on a CPU without AVX-512 or AMX oneDNN already runs them near float32's arithmetic peak (benchmarks/RESULTS.md),
so only less arithmetic makes them faster. Directly, a 'same' convolution costs K multiply-adds per input channel,
output channel and output sample; through the FFT, with blocks of N samples, (N/2 + 1) / (N - K + 1) complex ones,
about 4 x 33 / 54 = 2.4 real multiply-adds for K = 11 and N = 64, whatever the dilation: a dilated kernel runs as
`dilation` undilated ones over the input's phases (the samples t with the same t mod dilation), so every spectrum
holds just the kernel's K taps.

How, per convolution: the input (zeros outside it) is cut into overlapping blocks of N samples (step N - K + 1, per
phase), each block's real FFT is taken, every frequency bin's (blocks x C_in) @ (C_in x C_out) complex product runs
as one `torch.bmm` over bins, and the inverse FFT's first N - K + 1 samples of each block are the output; a chunk of
blocks at a time (CHUNK_ROWS), so that the temporaries stay small. The bias is added in the zero-frequency bin.
For 7 and 11 taps that measured 1.8-3.0x faster than oneDNN's direct convolution held to AVX2 (1.2-1.9x at
AVX-512), and the CPU engine 1.41x faster at AVX2 (1.25x at AVX-512; benchmarks/RESULTS.md, ninth session).

Exact to float32 rounding: tests compare with `F.conv1d` (within 1e-5 of the output's range; ~1e-6 measured). The
cost is memory: every spectrum is (N/2 + 1) x C_in x C_out complex numbers, 17 MB for a 256-channel convolution at
N = 64 and 8.6 MB for a 128-channel one at N = 128 (`block_for`); the vocoder's 36 long convolutions: 465 MB, held
by the renderer that uses them (`SpectralConvs.nbytes`).

Model code only: no I/O. `SpectralConvs(module)` computes the spectra of a module's eligible convolutions once;
inside `with spectra.active():` on the calling thread, `voicegen.model.layers.Conv1d` runs those convolutions
through `fft_conv1d` when its input is float32 on the CPU, with autograd and autocast off and not compiling
(compiled code and reduced precision keep the direct convolution).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

BLOCK = 64
"""Samples per FFT block for convolutions wider than NARROW_CHANNELS (the 256-channel stage: 17 MB per spectrum)."""

NARROW_CHANNELS, NARROW_BLOCK = 128, 128
"""Convolutions of at most NARROW_CHANNELS in and out use blocks of NARROW_BLOCK: 3-13% faster per convolution
than 64 (fewer bins per output sample; the engine 2-4% faster), for 8.6 MB per 128-channel spectrum instead of 4.3."""

MIN_TAPS = 7
"""Kernels this long and longer run through the FFT. 3 taps stay direct: at 256 channels they measured 0.7x through
it; at 128 channels, undilated, 1.3-1.4x (benchmarks/conv_kernels.py), the dilated ones not measured yet."""

MIN_CHANNELS = 64
"""Input and output channels at least this many: a narrow convolution (conv_post's 22 outputs) costs too little for
its blocks' transforms to pay."""


CHUNK_ROWS = 64
"""Rows (items x blocks x phases) of the per-bin products per chunk: 32-128 measured alike, whole tensors slower."""


def kernel_spectrum(weight: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """weight: (C_out, C_in, K) -> (block // 2 + 1, C_in, C_out) complex: the conjugated spectrum of the taps zero-
    padded to `block` (conjugated: a convolution layer correlates), laid out for `fft_conv1d`'s product per bin."""
    return torch.fft.rfft(weight.permute(2, 1, 0), n=block, dim=0).conj_physical().contiguous()


def fft_conv1d(
    x: torch.Tensor, spectrum: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, dilation: int = 1
) -> torch.Tensor:
    """F.conv1d(x, weight, bias, padding=dilation * (kernel_size - 1) // 2, dilation=dilation) for an odd
    kernel_size, through the FFT. x: (B, C_in, T) float32, spectrum: kernel_spectrum(weight, N) -> (B, C_out, T).

    N (the block) is read from the spectrum: (N // 2 + 1) bins; N must exceed kernel_size. The blocks go through
    in chunks of about CHUNK_ROWS (rows x blocks x phases), so that the transforms' temporaries stay small and in
    cache: on a fresh process's memory, whole-tensor passes made the 128-channel convolutions 1.7x slower."""
    if kernel_size % 2 == 0:
        raise ValueError(f"fft_conv1d keeps the length for odd kernels only; got kernel_size={kernel_size}")
    rows, channels, frames = x.shape
    bins, out_channels = spectrum.shape[0], spectrum.shape[-1]
    block = 2 * (bins - 1)
    step = block - kernel_size + 1  # valid outputs per block
    if step < 1:
        raise ValueError(f"a block of {block} samples is too short for {kernel_size} taps")
    pad = dilation * (kernel_size - 1) // 2
    per_phase = -(-frames // dilation)  # output samples per phase
    blocks = -(-per_phase // step)
    out = x.new_empty(rows, out_channels, blocks, step * dilation)
    per_chunk = max(1, CHUNK_ROWS // (rows * dilation))  # blocks per chunk
    for j in range(0, blocks, per_chunk):
        n = min(per_chunk, blocks - j)
        # the chunk's input: x[lo:hi] with zeros outside x (only the first and last chunks copy, to pad)
        lo = j * step * dilation - pad
        hi = lo + (n * step + kernel_size - 1) * dilation
        part = x[..., max(lo, 0) : min(hi, frames)]
        if lo < 0 or hi > frames:
            part = F.pad(part, (max(-lo, 0), max(hi - frames, 0)))
        # [b, c, m, r] = part[b, c, m * dilation + r]: phase r is an undilated sequence; its blocks overlap by K - 1
        part = part.view(rows, channels, -1, dilation).unfold(2, block, step)  # (B, C_in, n, d, N)
        spectra = torch.fft.rfft(part.permute(4, 0, 2, 3, 1), dim=0)  # (bins, B, n, d, C_in)
        # one gathering copy (bins outermost): bmm would otherwise copy each bin's matrix on its own, ~20% slower
        spectra = spectra.reshape(bins, rows * n * dilation, channels).contiguous()
        product = torch.bmm(spectra, spectrum)  # (bins, M, C_out)
        if bias is not None:
            product[0] += bias * block  # a constant: the inverse FFT divides the zero-frequency bin by N
        # bins innermost before the inverse transform: 25% faster than transforming over the outer dimension
        y = torch.fft.irfft(product.permute(1, 2, 0).contiguous(), n=block, dim=-1)  # (B * n * d, C_out, N)
        # [b, k, r, o, i] is output sample ((j + k) * step + i) * dilation + r of item b, channel o (i < step)
        y = y.view(rows, n, dilation, out_channels, block)[..., :step].permute(0, 3, 1, 4, 2)  # (B, C_out, n, step, d)
        out[:, :, j : j + n].unflatten(-1, (step, dilation)).copy_(y)
    return out.view(rows, out_channels, -1)[..., :frames]


def eligible(module: nn.Module) -> bool:
    """Whether `fft_conv1d` computes this module's convolution and is worth it: a 1-D convolution of one group,
    stride 1, odd kernel of MIN_TAPS or more, 'same' zero padding, MIN_CHANNELS or more in and out."""
    if not isinstance(module, nn.Conv1d):
        return False
    (k,), (d,), (s,), padding = module.kernel_size, module.dilation, module.stride, module.padding
    return (
        module.groups == 1 and s == 1 and k % 2 == 1 and k >= MIN_TAPS and module.padding_mode == "zeros"
        and padding == (d * (k - 1) // 2,) and min(module.in_channels, module.out_channels) >= MIN_CHANNELS
    )


def block_for(in_channels: int, out_channels: int) -> int:
    """The FFT block for a convolution: NARROW_BLOCK up to NARROW_CHANNELS channels in and out, else BLOCK."""
    return NARROW_BLOCK if max(in_channels, out_channels) <= NARROW_CHANNELS else BLOCK


_active = threading.local()


class SpectralConvs:
    """The kernel spectra of a module's eligible float32 CPU convolutions (`eligible`), computed once. They take
    effect only inside `with spectra.active():`, on that thread: the module itself is not changed, so one network
    can serve renderers that use them and renderers that do not."""

    def __init__(self, module: nn.Module, block: int | None = None):
        self.spectra: dict[nn.Module, torch.Tensor] = {}
        with torch.no_grad():
            for m in module.modules():
                if eligible(m) and m.weight.device.type == "cpu" and m.weight.dtype == torch.float32:
                    size = block or block_for(m.in_channels, m.out_channels)
                    if m.kernel_size[0] >= size:
                        raise ValueError(f"a block of {size} samples is too short for {m.kernel_size[0]} taps")
                    self.spectra[m] = kernel_spectrum(m.weight.detach(), size)

    @property
    def nbytes(self) -> int:
        """Memory the spectra hold."""
        return sum(s.numel() * s.element_size() for s in self.spectra.values())

    def __len__(self) -> int:
        return len(self.spectra)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run this module's eligible convolutions through the FFT on this thread until the block exits."""
        previous = getattr(_active, "spectra", None)
        _active.spectra = self.spectra
        try:
            yield
        finally:
            _active.spectra = previous


def active_spectrum(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor | None:
    """The spectrum to run `conv` on x with, or None for the direct convolution: None unless a `SpectralConvs`
    holding conv is active on this thread and x is float32 on the CPU, outside autograd, autocast and compiling."""
    if torch.compiler.is_compiling():
        return None
    spectra = getattr(_active, "spectra", None)
    if not spectra or x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
        return None
    if torch.is_autocast_enabled("cpu"):
        return None
    return spectra.get(conv)
