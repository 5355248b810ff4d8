"""The one-call API: `synthesize(...)` and `voices()`; a shared engine per device behind them."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import torch

from .audio import Audio
from .engine import DEFAULT_VOICE, Engine
from .performance import resolve_device
from .weights import Voice

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(device: str | torch.device | None = None) -> Engine:
    """The shared engine for `device` (None: CUDA when available, else the CPU), built on first use, then reused
    (weights load once; built again if it was closed). TypeError or ValueError for a device this torch cannot use
    (`resolve_device`)."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda" and "cuda:0" are one GPU: one engine
        dev = torch.device("cuda", torch.cuda.current_device())
    key = str(dev)
    with _lock:
        if key not in _engines or _engines[key].closed:  # the default device and its name share one engine
            _engines[key] = Engine(device=dev)
        return _engines[key]


def voices() -> list[str]:
    """Names of the built-in voices, then the user's (voice files in `voicegen.weights.user_voice_dir()`), each
    sorted (no model is loaded, no file is read: a user file that cannot be read is listed too, and using it
    raises VoiceError saying why; `voicegen voices --long` reads each and shows which)."""
    from .weights import VoiceBank

    bank = VoiceBank()
    return bank.builtin_names + sorted(bank.user_files)


def fit_voice(audio, sample_rate: int, text: str | None = None, **options) -> Voice:
    """Fit a voice to a recording of `text` -> `Voice` (save it with `voice.save("host.voice")`).
    See `voicegen.fit.fit_voice` for the options (start voice, steps, device, progress)."""
    from .fit import fit_voice as fit

    return fit(audio, sample_rate, text, **options)


def synthesize(
    text,
    voice: str | None = None,
    speed: float = 1.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    voices: Mapping[str, str] | None = None,
    pitch: float = 0.0,
) -> Audio:
    """Speak plain text, or render a multi-speaker script.

    Args:
        text: a string; or a podcast script (`voicegen.podcast.Script`, or script text when `voices` is given).
        voice: voice name, voice file ("host.voice") or blend ("jf_alpha+jf_nezumi") for plain text; None:
            jf_gongitsune (among the clearest). An empty name is an error, as in the CLI, and so is a voice given
            with a script (a script's voices come from `voices` and its cast).
        speed: 0.25 to 4.0, 1.0 is normal.
        seed: an integer makes the output reproducible (README, "Determinism": bit for bit for the same batch
            composition on the same machine; within a stated tolerance across batches).
        device: "cpu", "cuda", ... (default: CUDA if available).
        voices: {speaker: voice} for a script; speakers not named are cast automatically.
        pitch: semitones to shift the voice by (-12 to 12; for a script, every speaker), durations unchanged.

    Returns:
        Audio: float32 samples at 24 kHz with sentence (or turn) and word timings in `segments`.
    """
    from .podcast import Script

    is_script = isinstance(text, Script) or voices is not None
    if is_script and voice is not None:
        raise ValueError(f"voice={voice!r} is for plain text; a script's speakers get their voices from "
                         "voices={speaker: voice} or the script's cast, and the rest are cast automatically")
    engine = get_engine(device)
    if is_script:
        from .podcast.render import render_script

        script = text if isinstance(text, Script) else Script.parse(text)
        return render_script(engine, script, voices=voices, speed=speed, seed=seed, pitch=pitch)
    return engine.synthesize(text, DEFAULT_VOICE if voice is None else voice, speed=speed, seed=seed, pitch=pitch)
