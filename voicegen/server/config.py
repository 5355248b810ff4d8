"""What a server runs with: engine options and the limits it enforces (the CLI's `voicegen serve` flags)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .schema import MAX_INPUT_CHARS, MAX_SCRIPT_CHARS

TURN_ITEMS = {"cpu": 4, "cuda": 256}
"""Default chunks per worker turn by device: a new request's first chunk waits for at most one turn. On the CPU the
network is compute-bound and batching raises no throughput (benchmarks/RESULTS.md, "Server"), so turns stay small
for time to first audio; a GPU fills its batches with far more."""

QUEUE_ITEMS = {"cpu": 128, "cuda": 2048}
"""Default bound on chunks queued or rendering, by device: about what the device renders within the default
timeout (a 2-core CPU renders roughly one sentence a second), so that admitted requests finish and the rest get 429
at once rather than 504 after minutes."""


@dataclass(frozen=True)
class ServerConfig:
    """Options of one server.

    Attributes:
        device: "cpu", "cuda", ... (default: CUDA if available).
        api_key: when set, every request needs `Authorization: Bearer <api_key>`.
        voice_files: extra voice files (.voice/.npy/.npz/.pt) for the engine.
        voice_map: {alias: voice} added to / overriding OpenAI's voice names (see `voicegen.server.voices`).
        lexicon, alphabet: the frontend's pronunciation overrides and phoneme alphabet.
        compile: torch.compile the frame phase (slower start, faster rendering; compiled code is cached); None:
            the device's default (`Performance.default`: on CUDA yes, on the CPU no).
        dtype: precision of the frame phase: "float32", "bfloat16" or "float16"; None: the device's default
            (bfloat16 on CUDA, float32 on the CPU).
        max_input_chars: longest `input` of a speech request (OpenAI: 4096); longer: 413.
        max_script_chars: longest podcast script; longer: 413.
        max_queue: most chunks (sentences) queued or rendering across all requests; beyond it, 429 + Retry-After
            (None: QUEUE_ITEMS for the device).
        max_turn_items: most chunks per worker turn (None: TURN_ITEMS for the device).
        timeout: seconds a request may take from arrival to its last chunk rendered; then 504 (or, once audio
            has been sent, the stream is cut off) and its remaining chunks are cancelled.
        max_body_bytes: largest request body; larger: 413.
        max_podcasts: podcasts rendering at once (each holds a worker thread while it waits); beyond: 429.
        warmup: run the engine's warm-up (compile, capture) and render one sentence before reporting ready.
    """

    device: str | None = None
    api_key: str | None = None
    voice_files: tuple[str, ...] = ()
    voice_map: Mapping[str, str] = field(default_factory=dict)
    lexicon: Mapping[str, str] | None = None
    alphabet: str | None = None
    compile: bool | None = None
    dtype: str | None = None
    max_input_chars: int = MAX_INPUT_CHARS
    max_script_chars: int = MAX_SCRIPT_CHARS
    max_queue: int | None = None
    max_turn_items: int | None = None
    timeout: float = 300.0
    max_body_bytes: int = 1 << 20
    max_podcasts: int = 4
    warmup: bool = True

    def __post_init__(self):
        for name in ("max_input_chars", "max_script_chars", "max_queue", "max_turn_items", "max_body_bytes",
                     "max_podcasts"):
            value = getattr(self, name)
            if value is None and name in ("max_queue", "max_turn_items"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16; got {self.dtype!r}")
        if not isinstance(self.timeout, (int, float)) or not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds; got {self.timeout!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty; give a key or leave it out")
        if self.api_key is not None and not (self.api_key.isascii() and self.api_key.isprintable()):
            raise ValueError("api_key must be printable ASCII (an HTTP header carries bytes, and clients disagree on "
                             "how to encode other characters, so another key could never match)")
