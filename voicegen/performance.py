"""How the network runs (device, precision, compilation, CUDA graphs, batch budgets), apart from what it says.

`Performance` groups the options that change speed and memory but not the words or the voice; `resolve_device`
and `Performance.check` turn bad combinations into one clear ValueError before any weights load.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

CPU_BATCH_FRAMES = 200
"""CPU frame budget per batch (5 s of audio): batching gains little on a few cores (benchmarks/RESULTS.md), and the
frame phase's transient memory grows with the batch (~1.5-3 MB per frame on the C heap, fragmentation included):
200 rather than 400 frames took ~250 MB off the peak of a long `voicegen say` at the same speed (issue 15)."""

CPU_BATCH_TOKENS = 2048
"""CPU token budget per token-phase batch: on a 2,000-character window at speed 4 (benchmarks/batch_memory.py,
RESULTS.md 2026-11-26 fifth session) 2,048 padded tokens took the token phase's peak from +278 to +142 MB above
its base and its time from 4.2 to 2.5 s against 8,192 (attention and padding grow faster than linearly with a
batch's longest item, so tighter batches of items sorted by length cost less)."""

CUDA_BATCH_TOKENS = 16384
"""CUDA token budget per token-phase batch: a BiLSTM's recurrence is a chain of small steps, so a batch of many rows
takes little longer than one of a few and fewer batches pay. On an H200 (benchmarks/RESULTS.md, seventeenth session)
the 10-minute corpus's token phase took 35 ms in token batches of 128 and 7 rows (16,384 tokens; the rows also kept
within `layers.ONE_WAY_MAX_ROWS`) against 46 ms in batches of 64, 64 and 7 (8,192)."""

CUDA_BATCH_FRAMES = 16384
"""Largest CUDA frame budget per batch: large batches fill the device (on an H200, budgets of 4k to 64k frames
rendered alike: ../shared/GPU.md), and this one fits on cards of 24 GB and more."""

CUDA_BYTES_PER_FRAME = 0.7 * 2**20
"""Peak device memory per frame of batch budget: 11,076 MB at 16,384 frames on an H100 (compiled bfloat16 with 88
CUDA graphs captured, weights included; float32 eager: 9,145 MB), benchmarks/RESULTS.md 2026-11-26."""

CUDA_MEMORY_SHARE = 0.5
"""Share of the device's memory the frame budget may plan for (the rest: other processes, the token phase,
the allocator's slack)."""

DTYPES = {None: None, torch.float32: None, torch.bfloat16: torch.bfloat16, torch.float16: torch.float16}

DTYPE_NAMES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The frame phase's precisions by the names the command line and the server take (float32: None)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device to run on: `device`, or CUDA when available, else the CPU. ValueError for a device this
    torch build cannot use (e.g. "cuda" on a CPU-only build), naming what is available, or a CPU index other than 0
    ("cpu:0" is "cpu"); TypeError for a device that is neither a str nor a torch.device (torch reads an int as a CUDA
    index)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', or a torch.device; got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
            raise ValueError(f"device {device!r} is not available: this torch ({torch.__version__}, {build}) sees no "
                             "CUDA GPU; use 'cpu' (--device cpu on the command line)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    elif dev.index not in (None, 0):  # torch accepts and ignores it; tensors then compare unequal to "cpu"
        raise ValueError(f"device {device!r}: the CPU is one device (its threads are torch.set_num_threads); use 'cpu'")
    else:
        dev = torch.device("cpu")
    return dev


def cuda_batch_frames(device: torch.device) -> int:
    """The frame budget for a CUDA device, from its memory: CUDA_MEMORY_SHARE of it at CUDA_BYTES_PER_FRAME, in
    multiples of 256, at most CUDA_BATCH_FRAMES (an 8 GB card gets ~5.6k frames, 24 GB and more the maximum)."""
    total = torch.cuda.get_device_properties(device).total_memory
    frames = int(total * CUDA_MEMORY_SHARE / CUDA_BYTES_PER_FRAME) // 256 * 256
    return max(256, min(CUDA_BATCH_FRAMES, frames))


def can_compile_cuda() -> bool:
    """Whether torch.compile can generate CUDA code here: it needs Triton (not shipped for every platform)."""
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return bool(has_triton())


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class Performance:
    """Speed and memory options of an engine; none of them changes what is said or which voice says it.

    Attributes:
        compile: torch.compile the frame phase, with symbolic sizes, its graphs kept on disk (voicegen.compiled).
        dtype: reduced precision for the frame phase's convolutions (torch.bfloat16, or torch.float16 on CUDA;
            bfloat16 on the CPU needs AVX512-BF16/AMX). The layers that carry reduced precision's error stay
            float32: the F0/N predictor and conv_post (<1% of the compute), and the harmonic source and inverse
            STFT. None (or torch.float32): float32.
        cuda_graphs: capture the frame phase per (rows, frames) bucket into CUDA graphs (CUDA only).
        fft_convs: run the vocoder's long convolutions (7 and 11 taps) as products of spectra
            (`voicegen.model.fft_conv`): the same output to float32 rounding, those convolutions 1.2-3.0x faster,
            for 465 MB of kernel spectra. CPU only; it applies to the eager float32 path (with `compile` or a
            reduced `dtype` it is turned off: those keep the direct convolutions).
        max_batch_frames: budget of padded 40 Hz frames per frame-phase batch (memory bound); None: a default
            per device (CPU_BATCH_FRAMES; on CUDA from the device's memory, `cuda_batch_frames`).
        max_batch_tokens: budget of padded tokens per token-phase batch; None: a default per device
            (CPU_BATCH_TOKENS, CUDA_BATCH_TOKENS).
        max_turn_items: most chunks the worker renders per turn (None: all that are waiting). A cap keeps new,
            urgent work (a server's first sentences) from waiting behind a long backlog.
    """

    compile: bool = False
    dtype: torch.dtype | None = None
    cuda_graphs: bool = False
    fft_convs: bool = False
    max_batch_frames: int | None = None
    max_batch_tokens: int | None = None
    max_turn_items: int | None = None

    @classmethod
    def default(cls, device: torch.device, *, compile: bool | None = None, dtype: str | None = None) -> Performance:
        """What an engine runs with when it is given no Performance, with `compile` and `dtype` (a DTYPE_NAMES
        name) in place of the default's where given (the CLI's and the server's flags). On CUDA the fast path: compiled, bfloat16,
        CUDA graphs (1,014x real time on an H100 against 53x for eager batch-1, log-mel 0.03 nats from float32;
        the first process on a machine compiles for 2-3 minutes, later ones load the compiled graphs: see
        `Engine.warmup`); where torch cannot compile for CUDA (no Triton: `can_compile_cuda`), eager bfloat16
        with CUDA graphs. On the CPU eager float32 with the long convolutions through the FFT (`fft_convs`),
        where compiling pays only for long jobs. `Performance()` itself is eager float32 with direct convolutions
        on any device: the path to debug with."""
        if torch.device(device).type == "cuda":
            performance = cls(compile=can_compile_cuda(), dtype=torch.bfloat16, cuda_graphs=True)
        else:
            performance = cls(fft_convs=True)
        if compile is not None:
            performance = replace(performance, compile=compile)
        if dtype is not None:
            performance = replace(performance, dtype=DTYPE_NAMES[dtype])
        return performance

    def check(self, device: torch.device) -> Performance:
        """These options made concrete for `device` (defaults filled in); ValueError for what it cannot do."""
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be None, torch.float32, torch.bfloat16 or torch.float16; got {self.dtype}")
        dtype = DTYPES[self.dtype]
        if self.cuda_graphs and device.type != "cuda":
            raise ValueError("cuda_graphs needs a CUDA device")
        if self.fft_convs and device.type != "cpu":
            raise ValueError("fft_convs is for the CPU (on CUDA, cuDNN chooses the convolution algorithm)")
        if dtype == torch.float16 and device.type == "cpu":
            raise ValueError("float16 runs on CUDA only; on the CPU use bfloat16 (where the CPU has AVX512-BF16 or "
                             "AMX) or float32")
        if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_supports_bf16():
            raise ValueError("bfloat16 on the CPU needs AVX512-BF16 or AMX, which this CPU lacks; use float32")
        for name in ("max_batch_frames", "max_batch_tokens", "max_turn_items"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        frames = self.max_batch_frames or (
            cuda_batch_frames(device) if device.type == "cuda" else CPU_BATCH_FRAMES)
        tokens = self.max_batch_tokens or (CUDA_BATCH_TOKENS if device.type == "cuda" else CPU_BATCH_TOKENS)
        fft = self.fft_convs and not self.compile and dtype is None  # the direct convolutions there
        return replace(self, dtype=dtype, fft_convs=fft, max_batch_frames=frames, max_batch_tokens=tokens)
