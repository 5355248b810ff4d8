"""`fit_voice`: find the voice that makes our rendering of a recording's words sound like the recording.

The network is differentiable in its style vector, so a voice is found by gradient descent on the style table,
with the network's own parameters untouched:

1. The recording is made mono and 24 kHz; its words come from `text` (or Whisper, when the test extra is there).
2. Start: each candidate voice (the built-in ones by default) speaks the first seconds of the text, and the one
   whose long-term spectrum and median F0 are nearest the recording's is the start.
3. Alignment: the start voice's rendering is aligned to the recording by dynamic time warping of cepstra, which
   gives the recording's frames per phoneme (its durations). Rendering with these durations makes our audio
   frame-aligned with the recording, so spectra compare frame by frame.
4. Search (re-aligning once, a third of the way, with the voice found so far): the table is `start + sum_k a_k (voice_k - start) + delta` (a blend of the candidate voices plus one
   256-wide offset applied to every row), from a = 0, delta = 0, with Adam on `voicegen.fit.objective`'s loss.
   Integer durations carry no gradient, so the style's effect on the speaking rate is fitted through the soft
   (pre-rounding) durations. Steps stop early once the loss stops falling; the parameters kept are those that began
   the pass over the recording with the lowest mean loss (since the realignment), not the last ones.
5. The residual speaking-rate and pitch differences become the voice's speed and pitch defaults.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..constants import SAMPLE_RATE, SAMPLES_PER_FRAME, STYLE_DIM, TIMBRE_DIM
from ..dsp import resample, to_mono
from ..f0 import estimate_f0
from ..model.layers import lengths_to_mask
from ..text import Chunk
from ..weights import Voice, style_for
from .align import dtw_path, frame_features, map_boundaries
from .objective import Weights, log_mel, pitch_loss, rate_loss, spectral_loss

Progress = Callable[[int, int, float], None]
"""progress(step, steps, loss), called after each optimization step."""

FRAME_RATE = SAMPLE_RATE // SAMPLES_PER_FRAME  # 40 Hz
MIN_SECONDS = 0.5
MAX_SECONDS = 300.0
SELECT_SECONDS = 8.0
"""Seconds of text each candidate speaks when the start voice is chosen."""


@dataclass
class Target:
    """A recording cut to the text's chunks. Per chunk: `audio` (600 * frames,) float32 at 24 kHz, `durations`
    (T + 2,) int64 frames per token (wrapping pads included) summing to its frames, and the recording's F0 at
    80 Hz, `f0` (2 * frames,) Hz with `voiced` (2 * frames,) bool."""

    chunks: list[Chunk]
    audio: list[np.ndarray]
    durations: list[torch.Tensor]
    f0: list[np.ndarray]
    voiced: list[np.ndarray]

    @property
    def seconds(self) -> float:
        return sum(len(a) for a in self.audio) / SAMPLE_RATE


@dataclass
class FitReport:
    """What a fit did: the start voice and the candidates' start scores, the loss after each step, seconds, and
    the recording as last aligned (`target`: per-chunk audio and durations)."""

    start: str
    start_scores: dict
    losses: list
    seconds: float
    stopped_early: bool
    target: Target | None = None
    kept_step: int | None = None
    """Steps taken before the returned voice's parameters: those at the start of the full pass over the recording
    with the lowest mean loss since the realignment (0: the start voice; None: no full pass, the last parameters)."""


def prepare_recording(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(N,) or (N, C) audio at any rate -> (M,) float32 mono at 24 kHz. ValueError if it is not 0.5-300 s long,
    or silent."""
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer; got {sample_rate!r}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
        x = x.T  # (C, N) -> (N, C)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError(f"audio must be (samples,) or (samples, channels); got shape {x.shape}")
    seconds = x.shape[0] / sample_rate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"the recording is {seconds:.1f} s long; fitting takes {MIN_SECONDS:g} to {MAX_SECONDS:g} s "
                         "(5-60 s of clear speech work best)")
    x = resample(to_mono(x), int(sample_rate), SAMPLE_RATE)
    if not np.isfinite(x).all() or np.abs(x).max() < 1e-4:
        raise ValueError("the recording is silent (or holds NaN): fitting needs speech")
    return x.astype(np.float32)


def render_chunks(engine, chunks: Sequence[Chunk], table: torch.Tensor) -> list:
    """Render frontend chunks with a (510, 256) table, without source noise -> the rendered renderer Items
    (`audio`, `durations`)."""
    from ..renderer import Item

    items = [Item(c.tokens, style_for(table, len(c.tokens)), 1.0, 0, noise=False) for c in chunks]
    engine.renderer.render(items)
    return items


def _average_spectrum(audio: np.ndarray) -> np.ndarray:
    """(N,) -> (80,) mean log-mel over frames within 50 dB of the loudest."""
    spec = log_mel(torch.as_tensor(audio)[None], 1024, 300)[0]  # (80, T)
    energy = spec.max(0).values
    return spec[:, energy > energy.max() - 11.5].mean(1).numpy()


def _median_log_f0(audio: np.ndarray) -> float:
    track = estimate_f0(audio, SAMPLE_RATE)
    return math.log(track.median()) if track.voiced.any() else float("nan")


def nearest_voice(engine, recording: np.ndarray, chunks: Sequence[Chunk], candidates: Sequence[str]) -> dict[str, float]:
    """Score each candidate voice against the recording -> {voice: distance}, lower is nearer.

    Each speaks the chunks that make up the first ~8 s of the text; the distance is the gain-free L1 distance of
    the long-term log-mel spectra plus |difference of median log F0| in octaves.
    """
    some, seconds = [], 0.0
    for c in chunks:
        some.append(c)
        seconds += len(c.tokens) * 0.08  # ~12 phonemes per second
        if seconds >= SELECT_SECONDS:
            break
    ours, f0 = _average_spectrum(recording), _median_log_f0(recording)
    scores = {}
    for name in candidates:
        items = render_chunks(engine, some, engine.voice_table(name))
        audio = np.concatenate([it.audio for it in items])
        diff = _average_spectrum(audio) - ours
        score = float(np.abs(diff - diff.mean()).mean())
        f0_theirs = _median_log_f0(audio)
        if math.isfinite(f0) and math.isfinite(f0_theirs):
            score += abs(f0 - f0_theirs) / math.log(2)
        scores[name] = score
    return scores


def align_recording(recording: np.ndarray, chunks: Sequence[Chunk], items: Sequence) -> Target:
    """Cut a recording into the text's chunks, with frames per token, by aligning it to a rendering of the same
    chunks (`items`: rendered renderer Items, in order) -> Target."""
    pieces, owners = [], []  # rendered timeline at 40 Hz: (chunk, token) per frame, -1 in pauses
    for k, (chunk, item) in enumerate(zip(chunks, items)):
        pieces.append(item.audio)
        owners.append(np.full(len(item.audio) // SAMPLES_PER_FRAME, k))
        if k + 1 < len(chunks):
            gap = int(round(chunk.pause_after * FRAME_RATE))
            pieces.append(np.zeros(gap * SAMPLES_PER_FRAME, np.float32))
            owners.append(np.full(gap, -1))
    rendered = np.concatenate(pieces)
    owner = np.concatenate(owners)
    path = dtw_path(frame_features(rendered), frame_features(recording))
    total = -(-len(recording) // SAMPLES_PER_FRAME)
    audio, durations, f0s, voiced = [], [], [], []
    track = estimate_f0(recording, SAMPLE_RATE)
    for k, item in enumerate(items):
        first = int(np.flatnonzero(owner == k)[0])
        bounds = first + np.concatenate([[0], np.cumsum(item.durations.numpy())])  # token starts, then the end
        mapped = np.minimum(map_boundaries(path, bounds), total)
        start, end = int(mapped[0]), int(mapped[-1])
        if end <= start:
            end = min(start + 1, total)
            start = end - 1
            mapped = np.clip(mapped, start, end)
            mapped[-1] = end
        d = torch.as_tensor(np.diff(mapped), dtype=torch.long)
        clip = np.zeros((end - start) * SAMPLES_PER_FRAME, np.float32)
        seg = recording[start * SAMPLES_PER_FRAME : end * SAMPLES_PER_FRAME]
        clip[: len(seg)] = seg
        audio.append(clip)
        durations.append(d)
        f0 = np.zeros(2 * (end - start))
        v = np.zeros(2 * (end - start), bool)
        got = track.f0[2 * start : 2 * end]
        f0[: len(got)], v[: len(got)] = got, track.voiced[2 * start : 2 * end]
        f0s.append(f0)
        voiced.append(v)
    return Target(list(chunks), audio, durations, f0s, voiced)


class StyleSearch(torch.nn.Module):
    """The searched table: start + sum_k a_k (basis_k - start) + delta. start: (510, 256); basis: (K, 510, 256);
    a: (K,) and delta: (256,) are the parameters, both zero at first."""

    def __init__(self, start: torch.Tensor, basis: torch.Tensor):
        super().__init__()
        self.register_buffer("start", start)
        self.register_buffer("directions", basis - start[None])
        self.a = torch.nn.Parameter(torch.zeros(basis.shape[0], device=start.device))
        self.delta = torch.nn.Parameter(torch.zeros(STYLE_DIM, device=start.device))

    def table(self) -> torch.Tensor:
        """-> (510, 256)."""
        return self.start + torch.einsum("k,krs->rs", self.a, self.directions) + self.delta


@contextlib.contextmanager
def _rnn_backward(network: torch.nn.Module):
    """The network's LSTMs in training mode while a style gradient flows through them: cuDNN's RNN has no backward
    in eval mode. The LSTMs are one-layer (no dropout), so their output is the same in either mode."""
    lstms = [m for m in network.modules() if isinstance(m, torch.nn.LSTM) and not m.training]
    for m in lstms:
        m.train(True)
    try:
        yield
    finally:
        for m in lstms:
            m.train(False)


def _batch_groups(target: Target, seconds: float) -> list[list[int]]:
    """Chunk indices packed into groups of at most `seconds` of audio (one chunk may exceed it alone)."""
    groups, current, size = [], [], 0.0
    for k, clip in enumerate(target.audio):
        length = len(clip) / SAMPLE_RATE
        if current and size + length > seconds:
            groups.append(current)
            current, size = [], 0.0
        current.append(k)
        size += length
    return groups + [current] if current else groups


def _forward(network, target: Target, group: Sequence[int], table: torch.Tensor, noise: dict, weights: Weights,
             device: torch.device, with_audio: bool = True):
    """The loss of one group of chunks rendered with `table` -> (loss, {part: value}, extra). Without audio,
    only the token phase and the pitch predictor run (loss None), for `extra`."""
    from ..constants import PAD_ID

    chunks = [target.chunks[k] for k in group]
    lengths = torch.tensor([len(c.tokens) + 2 for c in chunks])
    size = int(lengths.max())
    tokens = torch.full((len(chunks), size), PAD_ID, dtype=torch.long)
    durations = torch.zeros(len(chunks), size, dtype=torch.long)
    for i, (k, c) in enumerate(zip(group, chunks)):
        tokens[i, 1 : len(c.tokens) + 1] = torch.tensor(c.tokens)
        durations[i, : len(c.tokens) + 2] = target.durations[k]
    tokens, durations = tokens.to(device), durations.to(device)
    style = torch.stack([style_for(table, len(c.tokens)) for c in chunks])  # (B, 256)
    speed = torch.ones(len(chunks), device=device)
    phase = network.encode(tokens, lengths, style, speed, durations)
    predictor = network.predictor
    logits = predictor.duration_proj.linear_layer(predictor.lstm(phase.d, lengths))  # (B, T, max_dur)
    soft = torch.sigmoid(logits).sum(-1)  # (B, T) frames before rounding
    is_token = (torch.arange(size, device=device)[None] >= 1) & (torch.arange(size, device=device)[None] < (lengths - 1).to(device)[:, None])
    frames = network.align(phase, style)
    fl = frames.frame_lengths.to(device)
    n_frames = frames.x.shape[-1]
    mask, mask2 = lengths_to_mask(fl, n_frames), lengths_to_mask(2 * fl, 2 * n_frames)
    f0, n = predictor.pitch_energy(frames.x, style[:, TIMBRE_DIM:], mask, mask2)
    noise_b = torch.zeros(len(chunks), n_frames * SAMPLES_PER_FRAME)
    recorded = torch.zeros(len(chunks), n_frames * SAMPLES_PER_FRAME)
    f0_target = torch.zeros(len(chunks), 2 * n_frames, dtype=torch.float64)
    voiced = torch.zeros(len(chunks), 2 * n_frames, dtype=torch.bool)
    for i, k in enumerate(group):
        m = len(target.audio[k])
        if with_audio:
            noise_b[i, :m] = noise[k]
        recorded[i, :m] = torch.from_numpy(target.audio[k])
        f0_target[i, : len(target.f0[k])] = torch.from_numpy(target.f0[k])
        voiced[i, : len(target.voiced[k])] = torch.from_numpy(target.voiced[k])
    extra = {"soft_frames": float((soft * is_token).sum().detach()), "aligned_frames": float((durations * is_token).sum()),
             "f0": f0.detach(), "f0_target": f0_target, "voiced": voiced}
    if not with_audio:
        return None, {}, extra
    audio = network.decoder(frames.asr, f0, n, style[:, :TIMBRE_DIM], fl, noise_b.to(device))
    samples = fl * SAMPLES_PER_FRAME
    frame_l1, average_l1 = spectral_loss(audio, recorded.to(device), samples)
    pitch = pitch_loss(f0, f0_target.to(device, f0.dtype), voiced.to(device))
    rate = rate_loss(soft, durations, is_token)
    parts = {"spectral": frame_l1, "average": average_l1, "pitch": pitch, "rate": rate}
    loss = sum(getattr(weights, k) * v for k, v in parts.items())
    return loss, {k: float(v.detach()) for k, v in parts.items()}, extra


def fit_voice(
    audio: np.ndarray,
    sample_rate: int,
    text: str | None = None,
    *,
    name: str = "fitted",
    start: str | None = None,
    candidates: Sequence[str] | None = None,
    steps: int = 40,
    lr: float = 0.01,
    offset_lr: float = 0.01,
    weights: Weights | None = None,
    batch_seconds: float = 8.0,
    tolerance: float = 0.002,
    patience: int = 6,
    realign: bool = True,
    engine=None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    report: list | None = None,
) -> Voice:
    """Fit a voice to a recording of someone saying `text` -> Voice (table, pitch and speed defaults, provenance).

    Args:
        audio: (N,) or (N, C) float samples (any rate, mono or stereo; averaged to mono), 0.5-300 s; 5-60 s of
            clear speech work best.
        sample_rate: its rate in Hz.
        text: what is said; None transcribes it with Whisper (needs `pip install 'voicegen[test]'`).
        name: the fitted voice's name.
        start: the voice to start from (a name, blend or file); None picks the nearest of `candidates`.
        candidates: voices to choose the start from, and the blend directions searched (default: the built-in
            voices).
        lr, offset_lr: Adam's step sizes for the blend weights and for the offset (per style number). At lr 0.05
            the loss rose from the first step on both of the benchmark's known-answer targets (the fitted voice
            ended further from the true one than the start); at 0.01 it fell (benchmarks/RESULTS.md, voices).
        steps: at most this many optimization steps (each renders up to `batch_seconds` of the recording
            forward and backward); it stops earlier when the loss has not fallen by `tolerance` (relative) for
            `patience` steps, but not before the realignment.
        weights: the objective's term weights (`Weights`; default: its defaults).
        batch_seconds, tolerance, patience: see `steps`.
        engine: the engine whose network, frontend and voices are used (default: the shared one for `device`).
        device: where to fit when no `engine` is given (default: CUDA if available, else the CPU).
        seed: seeds the source noise drawn for the optimization steps' renderings.
        progress: called as progress(step, steps, loss) after each step.
        realign: align the recording again after a third of the steps, with the voice found so far (nearer
            the recording than the start, so its phoneme boundaries come out closer).
        report: if a list is given, a `FitReport` is appended to it (with the final alignment, `target`).

    ValueError for a recording of the wrong length, silence, or text with nothing to say.
    """
    from ..api import get_engine
    from ..weights import builtin_voices

    started = time.monotonic()
    weights = weights or Weights()
    engine = engine or get_engine(device)
    device = engine.device
    recording = prepare_recording(audio, sample_rate)
    transcript = "given"
    if text is None:
        try:
            from ..eval.asr import Transcriber
        except ImportError as e:  # pragma: no cover - the module itself imports nothing heavy
            raise ValueError(f"no text given and no transcriber: {e}") from None
        try:
            text = Transcriber().transcribe(recording, SAMPLE_RATE)
        except ImportError as e:
            raise ValueError(f"no text given, and Whisper is not installed to transcribe it ({e}); pass the text") from None
        transcript = "whisper"
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text of the recording is empty; pass what is said in it")
    chunks = engine.frontend(text)
    candidates = list(candidates or sorted(builtin_voices()))
    if start is None:
        scores = nearest_voice(engine, recording, chunks, candidates)
        start = min(scores, key=scores.get)
    else:
        scores = {}
    start_table = engine.voice_table(start).float()
    basis = torch.stack([engine.voice_table(c).float() for c in candidates if c != start])
    search = StyleSearch(start_table.to(device), basis.to(device))
    target = align_recording(recording, chunks, render_chunks(engine, chunks, start_table))
    generator = torch.Generator().manual_seed(seed)
    noise = {k: torch.randn(len(a), generator=generator) for k, a in enumerate(target.audio)}
    groups = _batch_groups(target, batch_seconds)
    network = engine.renderer.network
    realign_at = max(1, steps // 3) if realign else None
    optimizer = torch.optim.Adam([{"params": [search.a], "lr": lr}, {"params": [search.delta], "lr": offset_lr}])
    losses, best, since_best, stopped = [], math.inf, 0, False
    lowest, kept, kept_step = math.inf, None, None  # the parameters that began the pass with the lowest mean loss
    params = [search.a, search.delta]
    first = 0  # the step that began the current alignment: passes over the groups count from it
    for step in range(steps):
        if step == realign_at:  # the voice is nearer now: its rendering aligns better to the recording
            target = align_recording(recording, chunks, render_chunks(engine, chunks, search.table().detach().cpu()))
            noise = {k: torch.randn(len(a), generator=generator) for k, a in enumerate(target.audio)}
            groups = _batch_groups(target, batch_seconds)
            best, since_best, lowest = math.inf, 0, math.inf  # losses against the new alignment are not comparable
            first = step
        index = (step - first) % len(groups)
        group = groups[index]
        if index == 0:
            pass_start = [p.detach().clone() for p in params]
        with torch.enable_grad(), _rnn_backward(network):
            loss, parts, _ = _forward(network, target, group, search.table(), noise, weights, device)
            grads = torch.autograd.grad(loss, params)  # the network's own parameters get no gradient
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        losses.append({"loss": float(loss.detach()), **parts, "group": index})
        if progress is not None:
            progress(step + 1, steps, losses[-1]["loss"])
        # convergence: the mean loss over the last full pass of groups (all against the same alignment)
        if index == len(groups) - 1:
            epoch = float(np.mean([entry["loss"] for entry in losses[-len(groups):]]))
            if epoch < lowest:
                lowest, kept, kept_step = epoch, pass_start, step + 1 - len(groups)
            if epoch < best * (1 - tolerance):
                best, since_best = epoch, 0
            else:
                since_best += len(groups)
                if since_best >= patience and (realign_at is None or step >= realign_at):  # realigned first
                    stopped = True
                    break
    if kept is not None:  # the best pass, not the last: a loss that rose at the end does not cost the result
        with torch.no_grad():
            for p, value in zip(params, kept):
                p.copy_(value)
    table = search.table().detach().cpu()
    pitch, speed = residual_defaults(network, target, table, device)
    seconds = time.monotonic() - started
    provenance = {
        "method": "fit",
        "start": start,
        "blend": {c: round(float(a), 4) for c, a in zip([c for c in candidates if c != start], search.a.detach())},
        "offset_norm": round(float(search.delta.detach().norm()), 4),
        "steps": len(losses),
        "kept_step": kept_step,
        "loss": [round(losses[0]["loss"], 4), round(losses[-1]["loss"], 4)] if losses else [],
        "audio_seconds": round(len(recording) / SAMPLE_RATE, 2),
        "text": text if len(text) <= 2000 else text[:2000] + "…",
        "transcript": transcript,
        "seconds": round(seconds, 1),
        "device": str(device),
    }
    if report is not None:
        report.append(FitReport(start, scores, losses, seconds, stopped, target, kept_step))
    return Voice(name, table, pitch=pitch, speed=speed, provenance=provenance)


def residual_defaults(network, target: Target, table: torch.Tensor, device="cpu") -> tuple[float, float]:
    """The pitch (semitones) and speed that close what `table` leaves of the recording's mean F0 and speaking
    rate; (0.0, 1.0) when the residual is below a quarter semitone / 3%. Runs the token phase and the pitch
    predictor only."""
    soft = aligned = 0.0
    log_ratio, count = 0.0, 0
    with torch.no_grad():
        for group in _batch_groups(target, 20.0):
            _, _, extra = _forward(network, target, group, table.to(device), {}, Weights(), device, with_audio=False)
            soft += extra["soft_frames"]
            aligned += extra["aligned_frames"]
            both = extra["voiced"].to(extra["f0"].device) & (extra["f0"] > 10)
            if int(both.sum()):
                log_ratio += float((torch.log(extra["f0_target"].to(extra["f0"].device)[both]) - torch.log(extra["f0"][both].double())).sum())
                count += int(both.sum())
    pitch = 12 * (log_ratio / count) / math.log(2) if count else 0.0
    pitch = round(float(np.clip(pitch, -6.0, 6.0)), 2) if abs(pitch) >= 0.25 else 0.0
    speed = soft / aligned if aligned else 1.0
    speed = round(float(np.clip(speed, 0.5, 2.0)), 3) if abs(math.log(speed)) >= 0.03 else 1.0
    return pitch, speed
