"""The engine: text and voices in, audio with timings out. A thin coordinator over three parts, each usable alone:

    frontend (voicegen.text.Frontend)    text -> chunks of phonemes with word spans and pauses
    voices   (voicegen.weights.VoiceBank) voice name or blend -> style table -> style row per chunk
    renderer (voicegen.renderer.Renderer) token items -> audio, batched across requests and threads

The steps are public, as a ladder: `engine.plan(request)` (text -> chunks -> items), `engine.renderer.render(items)`
(items -> audio), `engine.assemble(plan)` (-> Audio with sentence and word timings); `synthesize`,
`synthesize_many` and `stream` run them for you. The renderer is language-blind, so engines with other lexicons
or alphabets can share one loaded network: `Engine(renderer=engine.renderer, lexicon=...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
import torch

from .audio import Audio
from .performance import Performance
from .renderer import Item, Renderer, check_speed
from .seeds import check_seed, derive_seed, fresh_seed
from .text import Chunk, Frontend
from .text.phonemize import DEFAULT_ALPHABET
from .timing import assemble
from .weights import Voice, VoiceBank, check_pitch, style_for

DEFAULT_VOICE = "jf_gongitsune"
"""Among the clearest built-in voices for English by Whisper WER (benchmarks/RESULTS.md)."""


@dataclass
class Request:
    """One text to speak. `voice` is a name, a voice file path, a blend ("jf_alpha+jf_nezumi",
    "jf_alpha:2+jm_kumo:1"), a `Voice` or a (510, 256) table (None: the default voice); `seed` makes the output reproducible (None: fresh
    noise each call); `pitch` shifts the voice's F0 by that many semitones (durations unchanged). A voice file's
    own pitch and speed are its baseline: `pitch` adds to it and `speed` multiplies it."""

    text: str
    voice: str | torch.Tensor | np.ndarray | Voice = DEFAULT_VOICE
    speed: float = 1.0
    seed: int | None = None
    pitch: float = 0.0


@dataclass
class Plan:
    """A request made ready for the renderer: its chunks (text, phonemes, word spans, pauses) and one `Item`
    (tokens, style row, speed, seed) per chunk, in speaking order."""

    request: Request
    chunks: list[Chunk]
    items: list[Item]


class Engine:
    """A frontend, a voice bank and a renderer. Make one and reuse it; it is thread-safe.

    Args:
        weights: None for the built-in Kokoro-82M v1.0 weights, or a path to a Kokoro v1.0 `.onnx`,
            official `.pth` or our `.safetensors` file.
        device: "cpu", "cuda", ... (default: CUDA if available, else CPU).
        voices: extra voices: a path to a voice file (.voice/.npy/.npz/.pt) or a list of them, or {name: table}.
            The user's voices (`voicegen.weights.user_voice_dir()`) are known too.
        lexicon: {word: phonemes} overrides for the frontend.
        alphabet: how the frontend turns espeak's IPA into model symbols: "espeak" (the default, clearest for
            the built-in voices) or "misaki" (the alphabet of Kokoro's English voices).
        performance: compile, reduced precision, CUDA graphs, batch budgets (`voicegen.Performance`; default
            `Performance.default(device)`: compiled bfloat16 with CUDA graphs on CUDA; on the CPU eager float32, the
            long convolutions through the FFT).
        renderer: an existing engine's `renderer` to share (its network, device and performance); then
            `weights`, `device` and `performance` must be left out.
    """

    def __init__(
        self,
        weights: str | PathLike | None = None,
        device: str | torch.device | None = None,
        *,
        voices: str | PathLike | Sequence[str | PathLike] | Mapping[str, object] | None = None,
        lexicon: Mapping[str, str] | None = None,
        alphabet: str | None = None,
        performance: Performance | None = None,
        renderer: Renderer | None = None,
    ):
        self.frontend = Frontend(lexicon=lexicon, alphabet=alphabet or DEFAULT_ALPHABET)
        self.voice_bank = VoiceBank(voices)
        if renderer is not None:
            if weights is not None or device is not None or performance is not None:
                raise ValueError("a shared renderer brings its own weights, device and performance; leave them out")
            self.renderer = renderer
        else:
            self.renderer = Renderer(weights, device, performance)

    @property
    def device(self) -> torch.device:
        return self.renderer.device

    @property
    def stats(self):
        """The renderer's counters (`voicegen.renderer.RenderStats`)."""
        return self.renderer.stats

    @property
    def voices(self) -> list[str]:
        """Names of the voices this engine knows."""
        return self.voice_bank.names

    def voice_table(self, voice: str | torch.Tensor | np.ndarray) -> torch.Tensor:
        """A (510, 256) style table for a voice name, a voice file, a blend 'a+b' / 'a:2+b:1', or a table itself."""
        return self.voice_bank.table(voice)

    # ---------------------------------------------------------------- the ladder
    def plan(self, request: Request | str) -> Plan:
        """Text -> chunks -> renderer items, checking voice, speed and seed. ValueError if nothing is speakable."""
        request, item = self._items_for(request)
        chunks = self.frontend(request.text)
        return Plan(request, chunks, [item(i, c) for i, c in enumerate(chunks)])

    def plan_parts(self, request: Request | str) -> Iterator[tuple[Plan, bool]]:
        """`plan` in two steps, for streaming: yields (the plan of the first chunk, whether more follow) as soon as
        that chunk is phonemized (the text is normalized and split whole, but only the sentences up to the next
        speakable one are phonemized), then, when asked for the next part, (the plan of every other chunk, False).
        The two parts hold exactly the chunks and items (seeds, pauses) that `plan` gives. Checks the request, and
        raises ValueError if nothing is speakable, before the first part."""
        request, item = self._items_for(request)
        chunks = self.frontend.chunks(request.text)
        first, more = next(chunks, (None, False))
        if first is None:
            raise ValueError(f"nothing speakable in the text: {request.text[:80]!r}")
        yield Plan(request, [first], [item(0, first)]), more
        if more:
            rest = [c for c, _ in chunks]
            yield Plan(request, rest, [item(1 + i, c) for i, c in enumerate(rest)]), False

    def _items_for(self, request: Request | str) -> tuple[Request, Callable[[int, Chunk], Item]]:
        """The request, checked (voice, speed, pitch, seed), and a function (index, chunk) -> that chunk's Item."""
        request = request if isinstance(request, Request) else Request(request)
        if not isinstance(request.text, str):
            raise TypeError(f"text must be a str; got {type(request.text).__name__}")
        voice = self.voice_bank.voice(DEFAULT_VOICE if request.voice is None else request.voice)  # None: default
        speed = voice.speed_for(check_speed(request.speed))  # its own speed times the request's, in range
        pitch = voice.pitch_for(check_pitch(request.pitch))  # its own pitch plus the request's, in range
        seed = check_seed(request.seed)

        def item(i: int, chunk: Chunk) -> Item:
            return Item(chunk.tokens, style_for(voice.table, len(chunk.tokens)), speed,
                        fresh_seed() if seed is None else derive_seed(seed, i), pitch=pitch)

        return request, item

    def assemble(self, plan: Plan, trailing_pause: bool = False) -> Audio:
        """A rendered plan -> Audio with one Segment per chunk (sentence and word timings)."""
        return assemble(plan.chunks, [it.durations for it in plan.items], [it.audio for it in plan.items], trailing_pause)

    # ---------------------------------------------------------------- one call each
    def synthesize(self, text: str, voice=DEFAULT_VOICE, speed: float = 1.0, seed: int | None = None,
                   pitch: float = 0.0) -> Audio:
        """Speak `text`: -> Audio with one Segment per sentence chunk (with word timings)."""
        return self.synthesize_many([Request(text, voice, speed, seed, pitch)])[0]

    def synthesize_many(self, requests: Sequence[Request | str]) -> list[Audio]:
        """Speak many texts at once, each with its own voice, speed and seed; batched together. In order.
        TypeError for a single string (a sequence of requests is expected: wrap one text in a list)."""
        if isinstance(requests, (str, Request)):
            raise TypeError(f"synthesize_many takes a sequence of requests (Request or str); got one "
                            f"{type(requests).__name__}: pass [{type(requests).__name__.lower()}] or use synthesize()")
        plans = [self.plan(r) for r in requests]
        self.renderer.render([item for plan in plans for item in plan.items])
        return [self.assemble(plan) for plan in plans]

    def stream(self, text: str, voice=DEFAULT_VOICE, speed: float = 1.0, seed: int | None = None,
               pitch: float = 0.0) -> Iterator[Audio]:
        """Speak `text` chunk by chunk: the first chunk is phonemized and rendered alone (`plan_parts`: the rest is
        phonemized after it, so time to first audio grows with the text only by normalizing and splitting it, ~6 us
        a character on a 2-core CPU), the rest in batches; yields one Audio per chunk, each followed by its pause
        but the last, with times counted from the start of the whole text. Joined, the pieces have `synthesize`'s
        chunks, durations and word times, and, with a seed, its samples to the tolerance between batch compositions
        (the first chunk renders alone; README, "Determinism")."""
        parts = self.plan_parts(Request(text, voice, speed, seed, pitch))

        def rendered(plan: Plan, more_after: bool, start: float):
            """Render a part of the text in one call and yield its pieces -> where they end."""
            self.renderer.render(plan.items)
            n = len(plan.items)
            for k in range(n):
                pause = k + 1 < n or more_after
                audio = self.assemble(Plan(plan.request, plan.chunks[k : k + 1], plan.items[k : k + 1]), pause)
                audio.segments = [seg.shifted(start) for seg in audio.segments]
                start += audio.duration
                yield audio
            return start

        first, more = next(parts)
        start = yield from rendered(first, more, 0.0)
        if more:
            rest, _ = next(parts)  # the rest is phonemized only now
            yield from rendered(rest, False, start)

    def warmup(self, progress=None):
        """Compile and capture the frame phase ahead of time (see `Renderer.warmup`) -> WarmupReport."""
        return self.renderer.warmup(progress)

    def close(self) -> None:
        """Stop the renderer's worker thread (shared renderers stop for every engine that uses them)."""
        self.renderer.close()

    @property
    def closed(self) -> bool:
        """Whether the engine was closed (its requests now raise `voicegen.worker.WorkerClosed`)."""
        return self.renderer.closed
