"""Building blocks shared by the prosody predictor and the vocoder.

Every block that mixes time steps takes a `mask` of shape (B, 1, T) (1.0 on valid frames, 0.0 on padding) so that a
padded batch computes, on each item's valid frames, what the item alone would. The rules that make this exact:
statistics (instance norm) are taken over valid frames only, and every convolution that reaches across time sees
zeros on padded frames, just as a lone item's convolution sees its zero padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .fft_conv import active_spectrum, fft_conv1d

EPS = 1e-5


def lengths_to_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """lengths: (B,) -> (B, 1, size) float mask, 1.0 where t < length."""
    t = torch.arange(size, device=lengths.device)
    return (t[None, :] < lengths[:, None]).unsqueeze(1).float()


def masked_instance_norm(x: torch.Tensor, mask: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Instance norm over valid frames. x: (B, C, T), mask: (B, 1, T) -> (B, C, T) float32, zero on padding.

    Computed in float32 whatever x's dtype (under bf16 autocast, statistics over thousands of frames need it).
    """
    x = x.float()
    count = mask.sum(-1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
    if not torch.is_grad_enabled():  # the same statistics with one full-size tensor (the result) instead of four
        centred = x * mask
        mean = centred.sum(-1, keepdim=True) / count
        torch.sub(x, mean, out=centred).mul_(mask)
        var = torch.linalg.vector_norm(centred, dim=-1, keepdim=True).square_() / count  # no squared copy
        return centred.mul_(torch.rsqrt(var + eps))
    mean = (x * mask).sum(-1, keepdim=True) / count
    centred = (x - mean) * mask
    var = (centred * centred).sum(-1, keepdim=True) / count  # biased, as nn.InstanceNorm1d
    return centred * torch.rsqrt(var + eps)


class AdaIN1d(nn.Module):
    """Instance norm whose scale and shift come from the style vector."""

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T), s: (B, S), mask: (B, 1, T) -> (B, C, T), zero on padding."""
        gamma, beta = self.fc(s).unsqueeze(-1).chunk(2, dim=1)  # (B, C, 1) each
        if not torch.is_grad_enabled():  # in place on the fresh normalized tensor; the same values
            return masked_instance_norm(x, mask).mul_(1 + gamma).add_(beta).mul_(mask)
        return ((1 + gamma) * masked_instance_norm(x, mask) + beta) * mask


def _as_2d(conv: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """`conv` applied to x: (B, C, T) as a 2-D convolution over (B, C, 1, T) -> (B, C_out, T_out): the same
    arithmetic (cuDNN runs a 1-D convolution as this 2-D one anyway), in the form torch.compile's layout
    optimization can keep channels-last end to end (`voicegen.compiled.CHANNELS_LAST`, off by default). It
    leaves 1-D convolutions alone, and cuDNN then transposes each bf16 convolution's input and output between
    NCHW and NHWC: 15% of the compiled path's GPU time on an H200."""
    weight = conv.weight.unsqueeze(2)
    stride, padding, dilation = (1, conv.stride[0]), (0, conv.padding[0]), (1, conv.dilation[0])
    if isinstance(conv, nn.ConvTranspose1d):
        out = F.conv_transpose2d(x.unsqueeze(2), weight, conv.bias, stride, padding, (0, conv.output_padding[0]),
                                 conv.groups, dilation)
    else:
        out = F.conv2d(x.unsqueeze(2), weight, conv.bias, stride, padding, dilation, conv.groups)
    return out.squeeze(2)


class _TwoDOnCuda:
    """Mixed into Conv1d and ConvTranspose1d: integer zero padding checked at construction (`_as_2d` passes only
    that on), and the convolution run as `_as_2d` on CUDA, as the torch module itself on the CPU."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError(f"{type(self).__name__} takes integer zero padding only; got padding={self.padding!r}, "
                             f"padding_mode={self.padding_mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T) -> (B, C_out, T_out)."""
        return _as_2d(self, x) if x.is_cuda else super().forward(x)


class Conv1d(_TwoDOnCuda, nn.Conv1d):
    """nn.Conv1d (same parameters and names) that runs as a 2-D convolution on CUDA (`_as_2d`), as itself on the
    CPU, or through the FFT where a `fft_conv.SpectralConvs` holding it is active (float32 CPU inference). Integer
    zero padding only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T) -> (B, C_out, T_out)."""
        spectrum = None if x.is_cuda else active_spectrum(self, x)
        if spectrum is not None:
            return fft_conv1d(x, spectrum, self.bias, self.kernel_size[0], self.dilation[0])
        return super().forward(x)


class ConvTranspose1d(_TwoDOnCuda, nn.ConvTranspose1d):
    """nn.ConvTranspose1d (same parameters and names) that runs as a 2-D transposed convolution on CUDA
    (`_as_2d`), as itself on the CPU. Integer zero padding, no `output_size` argument."""


class AdaLayerNorm(nn.Module):
    """Layer norm over channels with style-conditioned scale and shift (per position: no masking needed)."""

    def __init__(self, style_dim: int, channels: int, eps: float = EPS):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C), s: (B, S) -> (B, T, C)."""
        gamma, beta = self.fc(s).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, C) each
        return (1 + gamma) * F.layer_norm(x, (self.channels,), eps=self.eps) + beta


class AdainResBlk1d(nn.Module):
    """Residual block of AdaIN, LeakyReLU and k=3 convolutions; optionally doubles the frame rate."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = Conv1d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = Conv1d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = Conv1d(dim_in, dim_out, 1, 1, 0, bias=False)
        if upsample:
            # depthwise transposed conv: T -> 2T
            self.pool = ConvTranspose1d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, s: torch.Tensor, mask: torch.Tensor, mask_out: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T), s: (B, S), mask: (B, 1, T), mask_out: (B, 1, T_out) -> (B, C_out, T_out).

        T_out is 2T when upsampling, else T (and mask_out is mask).
        """
        shortcut = x
        if self.upsample:
            shortcut = shortcut.repeat_interleave(2, dim=-1)  # nearest-neighbour x2
        if self.learned_sc:
            shortcut = self.conv1x1(shortcut)
        h = F.leaky_relu(self.norm1(x, s, mask), 0.2)
        if self.upsample:
            h = self.pool(h)
        h = self.conv1(h * mask_out)
        h = F.leaky_relu(self.norm2(h, s, mask_out), 0.2)
        h = self.conv2(h)
        return (h + shortcut) * (1 / math.sqrt(2))


UNPACKED_BILSTM = {"cuda": False}
"""Per device type: run `BiLSTM` over a padded batch without packing it (one call over the batch twice, left- and
right-aligned; see `BiLSTM.unpacked`). Off by default: an A/B switch for the GPU, where a packed cuDNN LSTM call
spent ~4 ms of host time (benchmarks/RESULTS.md, sixth session's H200 profile) and packing keeps the token phase
out of CUDA graphs."""

ONE_WAY_BILSTM: dict[str, torch.dtype | None] = {"cuda": torch.float16}
"""Per device type: a dtype (torch.float16) in which to run each `BiLSTM` as two one-way LSTM calls, one per
direction (`BiLSTM.one_way`), over rows padded to a multiple of 8; None or absent: off. On by default on CUDA (float16),
where this is the shape for which PyTorch gives cuDNN's persistent LSTM kernel (CUDNN_RNN_ALGO_PERSIST_STATIC, which
keeps the recurrent weights on chip across the steps instead of a kernel launch or two per step): float16 data, one
direction, unpacked, hidden and input sizes multiples of 128 (ours: 256; 512 and 640), at most `ONE_WAY_MAX_ROWS`
rows in a multiple of 8, on sm_80 or newer with at least 98 multiprocessors (A100, H100, H200). The token phase's
LSTMs are chains of small steps, one per token or frame (hundreds), so on a GPU they are latency-bound: on an H200
(benchmarks/RESULTS.md, seventeenth session) this took the compiled engine's corpus from 1,505x to 1,793x real time
and the one-minute script from 0.138 to 0.103 s, durations at most a frame from float32's. Off on the CPU (float16
LSTMs there are slower), and while autograd records a gradient through the BiLSTM (voice fitting keeps the packed
float32 LSTMs it was measured with). Like `UNPACKED_BILSTM` it reads nothing from the host, so the encoder can be
captured in CUDA graphs (`TOKEN_GRAPHS`)."""

ONE_WAY_ROWS = 8
"""`BiLSTM.one_way` pads its rows to a multiple of this (cuDNN's persistent kernel wants a multiple of 8)."""

ONE_WAY_MAX_ROWS = 128
"""The most rows for which cuDNN's persistent LSTM kernel runs: with `ONE_WAY_BILSTM` on, the renderer keeps its
token batches within this many items (`Renderer.token_batches`)."""


def one_way_rows(kind: str) -> int | None:
    """The most rows a token batch may have on a device of this type for `ONE_WAY_BILSTM`'s kernel, or None."""
    return ONE_WAY_MAX_ROWS if ONE_WAY_BILSTM.get(kind) is not None else None


TOKEN_GRAPHS = {"cuda": False}
"""Per device type (CUDA only): with CUDA graphs on (`Performance.cuda_graphs`) and BiLSTMs that read nothing from
the host (`UNPACKED_BILSTM` or `ONE_WAY_BILSTM` on), the renderer replays the token phase's encoder
(`KokoroNetwork.encode`: ALBERT, duration predictor, text encoder) as one captured graph per (rows, token bucket),
rows padded to a power of two; the alignment after it stays eager (its size is the frame count). Off: on an H200
(benchmarks/RESULTS.md, seventeenth session) it ran the one-minute script's token batch, but over the benchmark
corpus with one-way BiLSTMs a batch's durations came out summing to zero ("Expected sequence length to be larger
than 0 in RNN" in the alignment): not to be switched on until that is understood (`benchmarks/token_phase.py`)."""


ALBERT_GRAPHS = {"cuda": False}
"""Per device type (CUDA only): with CUDA graphs on (`Performance.cuda_graphs`) and the encoder itself not replayed
(`TOKEN_GRAPHS` off), the renderer replays the token phase's ALBERT as one captured graph per (rows, token bucket),
rows padded to a power of two, up to `cuda_graphs.ALBERT_GRAPH_MAX_TOKENS` padded tokens (larger batches run it
eagerly). ALBERT is twelve applications of one transformer layer, about 150 of the ~250 kernels of a sentence's
eager token phase (`benchmarks/launches.py`), and reads nothing from the host, so it is the part of the token phase
that a graph replays safely whatever the BiLSTMs do. Off until measured on a GPU (the first audio is launch-bound
there: benchmarks/RESULTS.md, seventeenth session); `benchmarks/switches.py`'s `albert-graphs`."""


def reads_no_host(kind: str) -> bool:
    """Whether `BiLSTM` on a device of this type runs without packing (`UNPACKED_BILSTM` or `ONE_WAY_BILSTM`), so
    that its lengths may live on the device and nothing is read back from it."""
    return bool(UNPACKED_BILSTM.get(kind, False) or ONE_WAY_BILSTM.get(kind))


def to_device(array, device: torch.device) -> torch.Tensor:
    """A host array or tensor on `device` (a tensor already on a device: `.to`). To CUDA it goes through pinned memory
    without waiting: `.to()` waits for the device to finish everything queued before it (a stream synchronization),
    and a copy from pageable memory may too. The pinned buffer is not reused before the copy is done (torch's pinned
    allocator records the copy)."""
    t = torch.as_tensor(array)
    if torch.device(device).type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


class BiLSTM(nn.LSTM):
    """A one-layer bidirectional LSTM over padded batches, exact per item.

    Packing keeps the backward direction from reading padding (`unpacked` does it without packing). `lengths` must
    live on the CPU (the engine knows them on the host), so packing costs no device synchronisation. Parameters keep
    nn.LSTM's names (`weight_ih_l0`, `weight_ih_l0_reverse`, ...), as in Kokoro checkpoints.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 1, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """x: (B, T, C_in), lengths: (B,) int64 on CPU (or on x's device when unpacked) -> (B, T, 2 * hidden),
        zero on padding."""
        total = x.shape[1]
        one_way = ONE_WAY_BILSTM.get(x.device.type)
        if one_way is not None and not (x.requires_grad and torch.is_grad_enabled()):  # not for voice fitting
            # lengths may live on the device: nothing is read back
            return self.one_way(x, lengths, one_way)
        if lengths.device.type == "cpu" and bool((lengths == total).all()):
            return super().forward(x)[0]
        if UNPACKED_BILSTM.get(x.device.type, False):  # lengths may live on the device: nothing is read back
            return self.unpacked(x, lengths)
        # packed longest first, as pack_padded_sequence(enforce_sorted=False) does, but sorted here on the host with
        # both permutations sent to the device without waiting: torch's own sorting copies the order there with a
        # blocking copy and reads the inverse order back, two device synchronizations per call on CUDA
        lengths, order = torch.sort(lengths, descending=True)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order))
        order, inverse = to_device(order, x.device), to_device(inverse, x.device)
        packed = nn.utils.rnn.pack_padded_sequence(x.index_select(0, order), lengths, batch_first=True)
        out, _ = super().forward(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=total)[0].index_select(0, inverse)

    def unpacked(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same as `forward` (to float rounding) without packing: x: (B, T, C_in), lengths: (B,) int64 ->
        (B, T, 2 * hidden), zero on padding.

        One LSTM call over 2B rows: the batch as it is (padding after each item, so the forward direction reads
        each item before its padding) and right-aligned (padding before, so the backward direction starts at each
        item's last step); the forward outputs come from the first copy, the backward ones from the second, shifted
        back. Twice the LSTM's arithmetic, but one call with static shapes and no host work per step (capturable in
        a CUDA graph)."""
        rows, total, hidden = x.shape[0], x.shape[1], self.hidden_size
        t = torch.arange(total, device=x.device)
        shift = (total - to_device(lengths, x.device))[:, None]  # (B, 1) padding steps per item
        src = t - shift  # (B, T): right-aligned step p holds step p - shift of the item
        right = torch.gather(x, 1, src.clamp(min=0)[..., None].expand(-1, -1, x.shape[2])) * (src >= 0)[..., None]
        out = super().forward(torch.cat([x, right.to(x.dtype)]))[0]  # (2B, T, 2 * hidden)
        back = torch.gather(out[rows:, :, hidden:], 1, (t + shift).clamp(max=total - 1)[..., None].expand(-1, -1, hidden))
        valid = (t < total - shift)[..., None]  # (B, T, 1): t < length
        return torch.cat([out[:rows, :, :hidden], back], -1) * valid

    def one_way(self, x: torch.Tensor, lengths: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The same as `forward` (to `dtype`'s rounding) as two one-way LSTM calls: x: (B, T, C_in), lengths: (B,)
        int64 -> (B, T, 2 * hidden) in x's dtype, zero on padding.

        The forward direction runs over the batch as it is (padding after each item); the backward one over each item
        reversed in place (its last step first, padding after it), its outputs reversed back. A step's output depends
        only on the steps before it, so what padding holds never reaches a valid output. Both calls take `dtype`
        (weights and inputs; cuDNN computes float16 LSTMs in float32) and rows padded to a multiple of
        `ONE_WAY_ROWS`: what `ONE_WAY_BILSTM` is for. No host work per step and nothing read back (capturable in a CUDA
        graph); on a GPU the two calls are queued on two streams, so the directions may overlap (not while a graph
        is being captured). Gradients reach x (voice fitting), not this module's weights: the calls run on copies.

        Written for few kernels (on a GPU each is a launch, and the token phase is launch-bound): both directions'
        inputs in one buffer (a cast copy and a gather into it), the reversal index and the mask made once per
        batch (`reversal`), zero initial states kept, and the output cast and masked in one product."""
        rows, total, width = x.shape
        forward, backward = self._one_way_lstms(x.device, dtype)
        forward.train(self.training), backward.train(self.training)  # cuDNN's backward (voice fitting) needs training
        mirror, valid = reversal(lengths, total, x.device, x.dtype)
        padded = rows + (-rows % ONE_WAY_ROWS)
        index = mirror[..., None].expand(-1, -1, width)
        grad = x.requires_grad and torch.is_grad_enabled()
        if grad:  # out-of-place, for autograd
            inputs = torch.stack([x, torch.gather(x, 1, index)]).to(dtype)
            inputs = torch.cat([inputs, inputs.new_zeros(2, padded - rows, total, width)], 1)
        else:  # (2, padded, T, C): forward steps, reversed steps; zero rows up to the multiple of ONE_WAY_ROWS
            inputs = x.new_empty((2, padded, total, width), dtype=dtype)
            if padded > rows:
                inputs[:, rows:].zero_()
            inputs[0, :rows] = x
            torch.gather(inputs[0, :rows], 1, index, out=inputs[1, :rows])
        state = _zero_state(x.device, dtype, padded, self.hidden_size, grad)

        def run(lstm: nn.LSTM, steps: torch.Tensor) -> torch.Tensor:
            return lstm(steps, state)[0][:rows]

        back, done = beside(x.device, 0, run, backward, inputs[1])
        ahead = run(forward, inputs[0])
        wait_for(done, x.device)
        back = torch.gather(back, 1, mirror[..., None].expand(-1, -1, self.hidden_size))
        return torch.mul(torch.cat([ahead, back], -1), valid)  # in x's dtype (valid's): the cast comes with the mask

    def _one_way_lstms(self, device: torch.device, dtype: torch.dtype) -> tuple[nn.LSTM, nn.LSTM]:
        """Two one-way LSTMs with this BiLSTM's forward and backward weights, on `device` in `dtype`, made on first use
        and kept (not registered: they are not in the state dict) until this module's weights change."""
        key = (str(device), dtype, weights_key(self._flat_weights))
        cache = self.__dict__.setdefault("_one_way_cache", {})
        if key not in cache:
            cache.clear()
            with torch.inference_mode(False), torch.no_grad():
                pair = []
                for suffix in ("", "_reverse"):
                    lstm = nn.LSTM(self.input_size, self.hidden_size, 1, batch_first=True)
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(lstm, f"{name}_l0").copy_(getattr(self, f"{name}_l0{suffix}"))
                    pair.append(lstm.eval().to(device=device, dtype=dtype))
            cache[key] = tuple(pair)
        return cache[key]


def weights_key(params) -> tuple:
    """What identifies the values of `params` for a cache of tensors derived from them: each one's device, storage and
    version (an in-place change, such as loading a state dict, bumps it; inference tensors have no version, and
    only their storage is compared)."""
    return tuple((p.device, p.data_ptr(), 0 if p.is_inference() else p._version) for p in params)


_REVERSALS: dict = {}
_ZERO_STATES: dict = {}


def _keeping(device: torch.device) -> tuple | None:
    """Where tensors made now for `device` may be kept for later calls: (device, the current CUDA stream's handle, or
    None on a CPU), or None while a CUDA graph is being captured (what is made then belongs to the graph)."""
    device = torch.device(device)
    if device.type != "cuda":
        return device, None
    if torch.cuda.is_current_stream_capturing():
        return None
    return device, torch.cuda.current_stream(device).cuda_stream


def reversal(lengths: torch.Tensor, total: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """What `BiLSTM.one_way` reverses items with -> mirror (B, T) int64 on `device` (step p of a reversed item is step
    mirror[p] = length - 1 - p of the item; 0 on padding) and valid (B, T, 1) in `dtype` (1 on the item's steps).

    From lengths on the CPU it is computed on the host (sent to a GPU in two copies) and kept for the next call with
    the same lengths on the same stream (the token phase's BiLSTMs share their lengths: one pair per batch and
    stream instead of six kernels per BiLSTM); from lengths on the device (a CUDA graph's input) it is computed
    there."""
    where = _keeping(device)
    if lengths.device.type == "cpu" and where is not None:
        key = (*where, total, dtype, tuple(lengths.tolist()))
        made = _REVERSALS.get(key)  # read once: another thread (another renderer) may clear the table meanwhile
        if made is None:
            if len(_REVERSALS) >= 8:  # a batch or two at a time: the earlier ones are done with
                _REVERSALS.clear()
            with torch.inference_mode(False):  # kept: usable outside inference mode too
                made = _REVERSALS[key] = tuple(to_device(t, device) for t in _reversal(lengths, total, dtype))
        return made
    return _reversal(to_device(lengths, device), total, dtype)


def _reversal(lengths: torch.Tensor, total: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(total, device=lengths.device)
    last = lengths[:, None] - 1  # (B, 1)
    return (last - t).clamp(min=0), (t <= last)[..., None].to(dtype)


def _zero_state(device: torch.device, dtype: torch.dtype, rows: int, hidden: int, grad: bool):
    """(h0, c0) zeros (1, rows, hidden) for a one-way LSTM call, made once per shape and stream and kept (read-only:
    an LSTM never writes its initial state; per stream, as a stream that did not make them would not wait for their
    zeroing), except while a graph is captured (their memory would belong to the graph) or while autograd records
    (each call gets its own)."""
    where = _keeping(device)
    if grad or where is None:
        zeros = torch.zeros((1, rows, hidden), dtype=dtype, device=device)
        return zeros, zeros
    key = (*where, dtype, rows, hidden)
    state = _ZERO_STATES.get(key)
    if state is None:
        with torch.inference_mode(False):
            zeros = torch.zeros((1, rows, hidden), dtype=dtype, device=device)
        state = _ZERO_STATES[key] = (zeros, zeros)
    return state


_SIDE_STREAMS: dict[tuple[torch.device, int], torch.cuda.Stream] = {}


def side_stream(device: torch.device, slot: int = 0):
    """A second CUDA stream of `device` (one per slot: 0 for `BiLSTM.one_way`'s backward direction, 1 for the text
    encoder, `voicegen.model.network.TEXT_ENCODER_STREAM`) for work that may overlap the current stream's, or None:
    not CUDA, or a graph is being captured on the current stream (the work then runs in order on it)."""
    device = torch.device(device)
    if device.type != "cuda" or torch.cuda.is_current_stream_capturing():
        return None
    key = (device, slot)
    if key not in _SIDE_STREAMS:
        _SIDE_STREAMS[key] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[key]


def beside(device: torch.device, slot: int, fn: Callable[..., torch.Tensor], *args) -> tuple[torch.Tensor, object]:
    """fn(*args) queued on the side stream `slot` of `device` (`side_stream`), after what the current stream has
    queued so far, so that what the current stream queues next may overlap it -> (its tensor, a CUDA event that the
    stream reading that tensor must wait for first: `wait_for`). Where there is no side stream (not CUDA, or a graph
    being captured) fn runs here, in order, and the event is None. The tensor arguments are recorded on the side
    stream and the result on the current one, so that the allocator hands neither out while the other stream may
    still use it."""
    side = side_stream(device, slot)
    if side is None:
        return fn(*args), None
    main = torch.cuda.current_stream(device)
    side.wait_stream(main)  # fn's inputs are made on the current stream
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.device.type == "cuda":
            arg.record_stream(side)
    with torch.cuda.stream(side):
        out = fn(*args)
    done = torch.cuda.Event()
    done.record(side)
    out.record_stream(main)
    return out, done


def wait_for(done, device: torch.device) -> None:
    """Make the current stream of `device` wait for an event from `beside` (None: nothing to wait for)."""
    if done is not None:
        torch.cuda.current_stream(device).wait_event(done)
