"""The engine: turns many texts into audio with as few, as full, forward passes as it can.

Pipeline for a set of requests (texts with voice, speed and seed):
1. The frontend splits each text into chunks of at most 510 phonemes (sentences, or pieces of long ones).
2. Token phase: chunks sorted by length, padded to a few fixed token buckets, run in batches.
3. Durations are now known, so every chunk's frame count is known; the frame phase (~95% of the compute)
   runs in batches bucketed by frame count, padded to fixed bucket sizes (static shapes for torch.compile
   and CUDA graphs), within a memory budget.
4. Audio is cut back to each chunk's own length and reassembled in order, with pauses, into one `Audio`
   per request, with sentence and word timings.

Noise for the harmonic source is drawn per chunk from a generator seeded by (request seed, chunk index),
so a chunk's audio does not depend on what else shares its batch. Calls from several threads are queued to
one worker thread that renders whatever is waiting as one set of batches.
"""

from __future__ import annotations

import queue
import random
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from os import PathLike
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from .audio import Audio, Segment, Word
from .constants import MAX_PHONEMES, PAD_ID, SAMPLE_RATE, SAMPLES_PER_FRAME
from .weights import VoiceError, as_voice_table, builtin_voices, load_network, load_voice_file, style_for

DEFAULT_VOICE = "jf_gongitsune"
"""Among the clearest built-in voices for English by Whisper WER (benchmarks/RESULTS.md: 2nd of 5 on our sentences,
1st of 5 on Harvard sentences)."""
TOKEN_BUCKETS = (32, 64, 128, 256, MAX_PHONEMES + 2)
FRAME_BUCKET_STEP = 2 ** 0.5  # frame buckets grow by sqrt(2): at most ~30% padding, few distinct shapes


def frame_buckets(largest: int = 8192, smallest: int = 32) -> tuple[int, ...]:
    """Frame-phase pad sizes: smallest, then x sqrt(2) steps rounded up to multiples of 16."""
    sizes, size = [], float(smallest)
    while True:
        rounded = int(-(-size // 16) * 16)
        sizes.append(rounded)
        if rounded >= largest:
            return tuple(sizes)
        size *= FRAME_BUCKET_STEP


def bucket_for(size: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= size; past the largest, the size rounded up to a multiple of the largest's step."""
    for b in buckets:
        if b >= size:
            return b
    return int(-(-size // 256) * 256)


@dataclass
class Request:
    """One text to speak. `voice` is a name, a blend ("jf_alpha+jf_nezumi", "jf_alpha:2+jm_kumo:1") or a
    (510, 256) table; `seed` makes the output reproducible (None: fresh noise each call)."""

    text: str
    voice: str | torch.Tensor | np.ndarray = DEFAULT_VOICE
    speed: float = 1.0
    seed: int | None = None


@dataclass
class _Item:
    """One chunk on its way through the model."""

    tokens: list[int]
    style: torch.Tensor  # (256,)
    speed: float
    seed: int
    # filled by the token phase
    frames: int = 0
    durations: torch.Tensor | None = None  # (T,) including the wrapping zeros
    x: torch.Tensor | None = None  # (512, frames)
    asr: torch.Tensor | None = None  # (512, frames)
    audio: np.ndarray | None = None


@dataclass
class EngineStats:
    """Counters since the engine was made (for benchmarks and tuning)."""

    items: int = 0
    token_batches: int = 0
    frame_batches: int = 0
    padded_frames: int = 0
    valid_frames: int = 0
    shapes: set = field(default_factory=set)


def _check_speed(speed: float) -> float:
    if not isinstance(speed, (int, float)) or not np.isfinite(speed) or not 0.25 <= speed <= 4.0:
        raise ValueError(f"speed must be a number from 0.25 to 4.0 (1.0 is normal); got {speed!r}")
    return float(speed)


def _item_seed(seed: int | None, index: int) -> int:
    if seed is None:
        return random.SystemRandom().getrandbits(63)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer or None; got {seed!r}")
    return (int(seed) * 1_000_003 + index * 7919 + 12345) % (2**63)


class Engine:
    """A loaded model, its voices and frontend, and the batching machinery. Make one and reuse it.

    Args:
        weights: None for the built-in Kokoro-82M v1.0 weights, or a path to a Kokoro v1.0 `.onnx`,
            official `.pth` or our `.safetensors` file.
        device: "cpu", "cuda", ... (default: CUDA if available, else CPU).
        voices: extra voices: a path to a voice file (.npy/.npz/.pt) or a list of them, or {name: table}.
        lexicon: {word: phonemes} overrides for the frontend.
        alphabet: how the frontend turns espeak's IPA into model symbols: "espeak" (the default, clearest for
            the built-in voices) or "misaki" (the alphabet of Kokoro's English voices).
        compile: torch.compile the frame phase (static shapes per bucket on CUDA; symbolic sizes on the CPU).
        dtype: reduced precision for the frame phase's convolutions (torch.bfloat16, or torch.float16 on CUDA;
            bfloat16 on the CPU needs AVX512-BF16/AMX); the harmonic source and inverse STFT stay float32.
            None: float32.
        cuda_graphs: capture the frame phase per bucket into CUDA graphs (CUDA only).
        max_batch_frames: budget of padded 40 Hz frames per frame-phase batch (memory bound).
        max_batch_tokens: budget of padded tokens per token-phase batch.
        noise: draw the source's noise (as the reference PyTorch model does); False makes the source
            deterministic without a seed, as in the ONNX export.
    """

    def __init__(
        self,
        weights: str | PathLike | None = None,
        device: str | torch.device | None = None,
        voices: str | PathLike | Sequence[str | PathLike] | Mapping[str, object] | None = None,
        lexicon: Mapping[str, str] | None = None,
        alphabet: str | None = None,
        compile: bool = False,
        dtype: torch.dtype | None = None,
        cuda_graphs: bool = False,
        max_batch_frames: int | None = None,
        max_batch_tokens: int = 8192,
        noise: bool = True,
    ):
        from .text import Frontend
        from .text.phonemize import DEFAULT_ALPHABET

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError("cuda_graphs needs a CUDA device")
        if dtype not in (None, torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be None, torch.float32, torch.bfloat16 or torch.float16; got {dtype}")
        if dtype == torch.float32:
            dtype = None
        if dtype is not None and self.device.type == "cpu" and not (
            dtype == torch.bfloat16 and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        ):
            raise ValueError("on the CPU, reduced precision needs bfloat16 support (AVX512-BF16 or AMX); use dtype=None")
        self.network = load_network(weights, self.device)
        self.frontend = Frontend(lexicon=lexicon, alphabet=alphabet or DEFAULT_ALPHABET)
        self.dtype = dtype
        self.noise = noise
        # CPU: small frame batches keep the generator's working set (128 channels x 4800 frames/s of audio) in
        # cache, and batching gains little on 2 cores (benchmarks/RESULTS.md); GPU: large batches fill the device.
        self.max_batch_frames = max_batch_frames or (16384 if self.device.type == "cuda" else 400)
        self.max_batch_tokens = max_batch_tokens
        self.frame_buckets = frame_buckets()
        self.stats = EngineStats()
        self._voices: dict[str, torch.Tensor] = dict(builtin_voices())
        self._add_voices(voices)
        self._render = self.network.render
        # Pad to bucket sizes (frames and rows) only where shapes must repeat: CUDA graphs, and compile on CUDA
        # (one static graph per bucket). The CPU compiles one graph with symbolic sizes, so it pads as eager
        # does, to the batch's longest item: bucket padding cost 20% more frames there (benchmarks/RESULTS.md).
        self._static_shapes = cuda_graphs or (compile and self.device.type != "cpu")
        self._compiled = compile
        if compile:
            import torch._dynamo.config as dynamo_config

            # CUDA: one static graph per bucket (what CUDA graphs need), up to ~17 frame buckets x a few row
            # counts. CPU: symbolic sizes from the first call, since compiling each shape costs minutes on a
            # small machine; still a handful of graphs (one row vs several, and inductor's own size guards).
            # Past torch's default limit of 8 graphs, new shapes would silently run eagerly.
            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
            self._render = torch.compile(self.network.render, dynamic=self.device.type == "cpu")
        self._graphs = None
        if cuda_graphs:
            from .graphs import GraphCache

            self._graphs = GraphCache(self._render, self.device, self.dtype)
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    # ---------------------------------------------------------------- voices
    def _add_voices(self, voices) -> None:
        if voices is None:
            return
        if isinstance(voices, Mapping):
            for name, table in voices.items():
                self._voices[str(name)] = as_voice_table(table, str(name))
            return
        paths = [voices] if isinstance(voices, (str, PathLike)) else list(voices)
        for path in paths:
            self._voices.update(load_voice_file(path))

    @property
    def voices(self) -> list[str]:
        """Names of the voices this engine knows."""
        return sorted(self._voices)

    def voice_table(self, voice: str | torch.Tensor | np.ndarray) -> torch.Tensor:
        """A (510, 256) style table for a voice name, a blend 'a+b' / 'a:2+b:1', or a table itself."""
        if not isinstance(voice, str):
            return as_voice_table(voice)
        parts = [p.strip() for p in voice.split("+")]
        tables, weights = [], []
        for part in parts:
            name, _, weight = part.partition(":")
            name = name.strip()
            if name not in self._voices:
                raise VoiceError(f"unknown voice {name!r}; known voices: {', '.join(self.voices)}")
            try:
                w = float(weight) if weight else 1.0
            except ValueError:
                raise VoiceError(f"bad blend weight {weight!r} in voice {voice!r}; write 'name:2+other:1'") from None
            if not np.isfinite(w) or w <= 0:
                raise VoiceError(f"blend weights must be positive; got {weight!r} in {voice!r}")
            tables.append(self._voices[name])
            weights.append(w)
        total = sum(weights)
        return sum(t * (w / total) for t, w in zip(tables, weights))

    # ---------------------------------------------------------------- public calls
    def synthesize(self, text: str, voice=DEFAULT_VOICE, speed: float = 1.0, seed: int | None = None) -> Audio:
        """Speak `text`: -> Audio with one Segment per sentence chunk (with word timings)."""
        return self.synthesize_many([Request(text, voice, speed, seed)])[0]

    def synthesize_many(self, requests: Sequence[Request | str]) -> list[Audio]:
        """Speak many texts at once, each with its own voice, speed and seed; batched together. In order."""
        plans = [self._plan(r if isinstance(r, Request) else Request(r)) for r in requests]
        items = [item for plan in plans for item in plan[1]]
        self._submit(items).result()
        return [self._assemble(chunks, plan_items) for chunks, plan_items in plans]

    def stream(self, text: str, voice=DEFAULT_VOICE, speed: float = 1.0, seed: int | None = None) -> Iterator[Audio]:
        """Speak `text` chunk by chunk: the first chunk is rendered alone (time to first audio), the rest in
        batches; yields one Audio per chunk (with its pause appended), in order."""
        chunks, items = self._plan(Request(text, voice, speed, seed))
        first = 1
        start = 0.0
        for lo, hi in ((0, first), (first, len(items))):
            if lo >= hi:
                continue
            self._submit(items[lo:hi]).result()
            for chunk, item in zip(chunks[lo:hi], items[lo:hi]):
                audio = self._assemble([chunk], [item])
                audio.segments = [_shift(seg, start) for seg in audio.segments]
                start += audio.duration
                yield audio

    def render_tokens(
        self, tokens: Sequence[Sequence[int]], styles: torch.Tensor, speeds: Sequence[float], seeds: Sequence[int] | None
    ) -> list[np.ndarray]:
        """Low level: render token lists (vocab ids without the wrapping zeros) with per-item style (B, 256),
        speed and seed (None: the deterministic source without noise) -> float32 audio per item."""
        items = []
        for i, toks in enumerate(tokens):
            if not 1 <= len(toks) <= MAX_PHONEMES:
                raise ValueError(f"item {i}: {len(toks)} tokens; an item holds 1 to {MAX_PHONEMES}")
            seed = -1 if seeds is None else int(seeds[i])
            items.append(_Item(list(toks), styles[i], _check_speed(speeds[i]), seed))
        self._render_items(items)
        return [item.audio for item in items]

    # ---------------------------------------------------------------- planning and assembly
    def _plan(self, request: Request) -> tuple[list, list[_Item]]:
        if not isinstance(request.text, str):
            raise TypeError(f"text must be a str; got {type(request.text).__name__}")
        speed = _check_speed(request.speed)
        table = self.voice_table(request.voice)
        chunks = self.frontend(request.text)  # ValueError if nothing speakable
        items = [
            _Item(chunk.tokens, style_for(table, len(chunk.tokens)), speed, _item_seed(request.seed, i))
            for i, chunk in enumerate(chunks)
        ]
        return chunks, items

    def _assemble(self, chunks, items: list[_Item]) -> Audio:
        pieces, segments, t = [], [], 0
        frame_s = SAMPLES_PER_FRAME / SAMPLE_RATE
        for chunk, item in zip(chunks, items):
            ends = torch.cumsum(item.durations, 0).tolist()  # frames after each token (token 0 is BOS)
            start_s = t / SAMPLE_RATE
            words = tuple(
                Word(w.text, start_s + ends[w.start] * frame_s, start_s + ends[w.end] * frame_s) for w in chunk.words
            )
            pieces.append(item.audio)
            t += len(item.audio)
            segments.append(Segment(chunk.text, start_s, t / SAMPLE_RATE, words=words))
            pause = np.zeros(int(round(chunk.pause_after * SAMPLE_RATE)), np.float32)
            pieces.append(pause)
            t += len(pause)
        if pieces and len(pieces[-1]) and len(pieces) > 1:
            pieces.pop()  # no trailing pause after the last chunk
        samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return Audio(np.clip(samples, -1.0, 1.0), SAMPLE_RATE, segments)

    # ---------------------------------------------------------------- the worker
    def _submit(self, items: list[_Item]) -> Future:
        future: Future = Future()
        if not items:
            future.set_result(None)
            return future
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="voicegen-engine", daemon=True)
                self._worker.start()
        self._queue.put((items, future))
        return future

    def _work(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while True:  # gather everything already waiting: concurrent callers share batches
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for job_items, _ in jobs for item in job_items]
            try:
                self._render_items(items)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in jobs:
                    future.set_exception(exc)
            else:
                for _, future in jobs:
                    future.set_result(None)

    # ---------------------------------------------------------------- batched rendering
    @torch.inference_mode()
    def _render_items(self, items: list[_Item]) -> None:
        self.stats.items += len(items)
        for batch in self._token_batches(items):
            self._token_phase(batch)
        for batch, frames in self._frame_batches(items):
            self._frame_phase(batch, frames)

    def _token_batches(self, items: list[_Item]) -> Iterator[list[_Item]]:
        order = sorted(items, key=lambda it: len(it.tokens))
        batch: list[_Item] = []
        for item in order:
            size = bucket_for(len(item.tokens) + 2, TOKEN_BUCKETS)  # the longest so far: items are sorted
            if batch and size * (len(batch) + 1) > self.max_batch_tokens:
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _token_phase(self, batch: list[_Item]) -> None:
        self.stats.token_batches += 1
        lengths = torch.tensor([len(it.tokens) + 2 for it in batch])
        size = bucket_for(int(lengths.max()), TOKEN_BUCKETS)
        tokens = torch.full((len(batch), size), PAD_ID, dtype=torch.long)
        for i, it in enumerate(batch):
            tokens[i, 1 : len(it.tokens) + 1] = torch.tensor(it.tokens)
        dev = self.device
        style = torch.stack([it.style for it in batch]).to(dev)
        speed = torch.tensor([it.speed for it in batch], device=dev)
        phase = self.network.encode(tokens.to(dev), lengths, style, speed)
        frames = self.network.align(phase, style)
        durations = phase.durations.cpu()
        for i, it in enumerate(batch):
            it.frames = int(frames.frame_lengths[i])
            it.durations = durations[i, : lengths[i]]
            it.x = frames.x[i, :, : it.frames]
            it.asr = frames.asr[i, :, : it.frames]

    def _frame_batches(self, items: list[_Item]) -> Iterator[tuple[list[_Item], int]]:
        order = sorted(items, key=lambda it: it.frames)
        groups: dict[int, list[_Item]] = {}
        for item in order:
            groups.setdefault(bucket_for(item.frames, self.frame_buckets), []).append(item)
        for frames, group in groups.items():
            per_batch = max(1, self.max_batch_frames // frames)
            for lo in range(0, len(group), per_batch):
                yield group[lo : lo + per_batch], frames

    def _frame_phase(self, batch: list[_Item], frames: int) -> None:
        self.stats.frame_batches += 1
        dev = self.device
        rows = len(batch)
        if self._static_shapes:
            rows = max(1, self.max_batch_frames // frames)  # fixed batch per bucket: one shape per bucket
            rows = min(rows, _round_up_pow2(len(batch)))
        else:
            frames = max(it.frames for it in batch)  # eager: no static shapes needed, pad only to the longest
        x = torch.zeros(rows, 512, frames, device=dev)
        asr = torch.zeros(rows, 512, frames, device=dev)
        lengths = torch.zeros(rows, dtype=torch.long)
        style = torch.zeros(rows, 256, device=dev)
        for i, it in enumerate(batch):
            x[i, :, : it.frames] = it.x
            asr[i, :, : it.frames] = it.asr
            lengths[i] = it.frames
            style[i] = it.style.to(dev)
        noise = None
        # compiled: always a noise tensor (zeros for unseeded items), so "no noise" needs no graph of its own
        if self.noise and (self._compiled or any(it.seed >= 0 for it in batch)):
            noise = torch.zeros(rows, frames * SAMPLES_PER_FRAME)
            for i, it in enumerate(batch):
                if it.seed >= 0:
                    g = torch.Generator().manual_seed(it.seed)
                    noise[i, : it.frames * SAMPLES_PER_FRAME] = torch.randn(it.frames * SAMPLES_PER_FRAME, generator=g)
            noise = noise.to(dev, non_blocking=True)
        self.stats.padded_frames += rows * frames
        self.stats.valid_frames += int(lengths.sum())
        self.stats.shapes.add((rows, frames))
        if self._graphs is not None:
            audio = self._graphs.run(x, asr, style, lengths.to(dev), noise)
        else:
            with torch.autocast(dev.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
                audio = self._render(x, asr, style, lengths.to(dev), noise)
        audio = audio.float().cpu().numpy()
        for i, it in enumerate(batch):
            it.audio = audio[i, : it.frames * SAMPLES_PER_FRAME].copy()
            it.x = it.asr = None


def _round_up_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _shift(seg: Segment, dt: float) -> Segment:
    words = tuple(Word(w.text, w.start + dt, w.end + dt) for w in seg.words)
    return Segment(seg.text, seg.start + dt, seg.end + dt, seg.speaker, seg.voice, words)
