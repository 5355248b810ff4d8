"""The module-level switches that the benchmarks try against the defaults, by name: one table for
`token_phase.py`'s settings, `throughput.py --ab`'s variants and `gpu_session.sh`'s environment (which writes
`switches.set_all(...)` into a sitecustomize, so that every process of a device call starts with them).

Each switch is a per-device-type dict in a voicegen module (`{"cuda": False}` and the like): naming one sets its
value for one device type, and `set_switch` returns the function that puts back what was there.

  fp32-albert / fp16-albert / bf16-albert
                   ALBERT's matrix products in float32 / float16 / bfloat16 (`voicegen.model.acoustic.albert.
                   HALF_PRECISION`; CUDA's default float16, the CPU's float32)
  unpacked         BiLSTMs over the padded batch twice, without packing (`voicegen.model.layers.UNPACKED_BILSTM`)
  one-way / one-way-fp16 / packed
                   each BiLSTM as two one-way LSTM calls in float32 / float16 (`layers.ONE_WAY_BILSTM`; in float16
                   the shape of cuDNN's persistent LSTM kernel on an A100/H100/H200, CUDA's default) / off (packed,
                   or `unpacked` where that is set)
  token-graphs     the token phase's encoder replayed as CUDA graphs (`layers.TOKEN_GRAPHS`; needs unpacked or
                   one-way BiLSTMs, and pads token batches to their buckets)
  albert-graphs    the token phase's ALBERT replayed as CUDA graphs (`layers.ALBERT_GRAPHS`; the rest of the token
                   phase eager, whatever its BiLSTMs)
  text-encoder-stream / one-stream
                   the token phase's text encoder on a second CUDA stream, CUDA's default / on the same stream as the
                   rest (`voicegen.model.network.TEXT_ENCODER_STREAM`)
  exact-padding / bucket-padding
                   token batches padded to their longest item / their token bucket
                   (`voicegen.renderer.EXACT_TOKEN_PADDING`; the CPU's default exact, CUDA's buckets)
  channels-last    the compiled frame phase channels-last (`voicegen.compiled.CHANNELS_LAST`)
  pipelined-script a script's next window rendered while this one is mixed, a one-window script in two halves
                   (`voicegen.podcast.render.PIPELINED_WINDOWS`)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

import torch

SWITCHES: dict[str, tuple[str, str, object]] = {
    "fp32-albert": ("voicegen.model.acoustic.albert", "HALF_PRECISION", None),
    "fp16-albert": ("voicegen.model.acoustic.albert", "HALF_PRECISION", torch.float16),
    "bf16-albert": ("voicegen.model.acoustic.albert", "HALF_PRECISION", torch.bfloat16),
    "unpacked": ("voicegen.model.layers", "UNPACKED_BILSTM", True),
    "one-way": ("voicegen.model.layers", "ONE_WAY_BILSTM", torch.float32),
    "one-way-fp16": ("voicegen.model.layers", "ONE_WAY_BILSTM", torch.float16),
    "packed": ("voicegen.model.layers", "ONE_WAY_BILSTM", None),
    "token-graphs": ("voicegen.model.layers", "TOKEN_GRAPHS", True),
    "albert-graphs": ("voicegen.model.layers", "ALBERT_GRAPHS", True),
    "text-encoder-stream": ("voicegen.model.network", "TEXT_ENCODER_STREAM", True),
    "one-stream": ("voicegen.model.network", "TEXT_ENCODER_STREAM", False),
    "exact-padding": ("voicegen.renderer", "EXACT_TOKEN_PADDING", True),
    "bucket-padding": ("voicegen.renderer", "EXACT_TOKEN_PADDING", False),
    "channels-last": ("voicegen.compiled", "CHANNELS_LAST", True),
    "pipelined-script": ("voicegen.podcast.render", "PIPELINED_WINDOWS", True),
}
"""name -> (module, per-device-type dict in it, the value the name sets)."""

_MISSING = object()


def set_switch(name: str, kind: str) -> Callable[[], None]:
    """Set switch `name` (a key of SWITCHES) for device type `kind` ("cpu", "cuda") -> a function that undoes it."""
    if name not in SWITCHES:
        raise ValueError(f"unknown switch {name!r}: one of {', '.join(SWITCHES)}")
    module, attribute, value = SWITCHES[name]
    table = getattr(importlib.import_module(module), attribute)
    saved = table.get(kind, _MISSING)
    table[kind] = value

    def undo() -> None:
        if saved is _MISSING:
            table.pop(kind, None)
        else:
            table[kind] = saved
    return undo


def set_all(names: Iterable[str], kind: str) -> Callable[[], None]:
    """Set several switches in order -> a function that undoes them in reverse order. Unknown names fail before any
    switch is set."""
    names = list(names)
    unknown = [name for name in names if name not in SWITCHES]
    if unknown:
        raise ValueError(f"unknown switches {', '.join(map(repr, unknown))}: known are {', '.join(SWITCHES)}")
    undos = [set_switch(name, kind) for name in names]

    def undo() -> None:
        for u in reversed(undos):
            u()
    return undo
