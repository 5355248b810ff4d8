"""The FastAPI app: OpenAI's speech endpoint and ours, over one engine shared by every client.

| route | what |
|---|---|
| POST /v1/audio/speech | OpenAI's speech API: audio bytes (streamed chunk by chunk) or, with stream_format "sse", events |
| POST /v1/audio/speech/captioned | the same request; JSON with the audio (base64) and sentence and word timings |
| POST /v1/audio/podcast | a multi-speaker script -> one mixed episode (base64) and its transcript, as JSON |
| GET /v1/models, /v1/models/{id} | the model ids the server answers to (OpenAI's list shape) |
| GET /v1/audio/voices | voice names: ours, and OpenAI's with the voices they map to |
| GET /health | 200 {"status": "ok"} once the engine is loaded and warmed up; 503 before (or if loading failed) |
| GET /metrics | Prometheus metrics (`voicegen.server.metrics`) |

The engine loads in a background thread when the app starts, so /health answers (503, "loading") meanwhile. A
speech request is checked, its first chunk planned and the request admitted on an estimate of its chunks before
anything is sent, so every refusal is a proper 4xx; the response starts when the first chunk is rendered, and the
rest of the text, planned after it, follows as it renders (`dispatch`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..audio import Audio, Segment
from ..constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..engine import Engine, Request as EngineRequest
from ..performance import Performance, resolve_device
from ..weights.voices import VoiceError
from . import logs
from .config import QUEUE_ITEMS, TURN_ITEMS, ServerConfig
from .dispatch import PODCAST, Cancelled, Dispatcher, SpeechJob, Timeout, estimate_chunks
from .encode import MEDIA_TYPES, encode, encoder
from .errors import ApiError, bad_request
from .metrics import Metrics
from .schema import MODELS, PodcastParams, SpeechParams, parse_json
from .voices import VoiceMap

ENDPOINTS = {
    "/v1/audio/speech": "speech",
    "/v1/audio/speech/captioned": "captioned",
    "/v1/audio/podcast": "podcast",
    "/v1/models": "models",
    "/v1/audio/voices": "voices",
    "/health": "health",
    "/metrics": "metrics",
}

CLIENT_GONE = 499
"""Status logged and counted for a request whose client disconnected (nginx's convention)."""

WARMUP_TEXT = "Warming up the speech engine."


class StreamAborted(Exception):
    """Raised inside a response that has already started (a timeout or a render failure after the first audio):
    the connection is closed without the final chunk, so the client sees an incomplete body, not a short one."""


def _aborted(exc: BaseException | None) -> bool:
    """Whether `exc` is a StreamAborted, alone or inside exception groups (anyio's task groups wrap it)."""
    if isinstance(exc, StreamAborted):
        return True
    inner = getattr(exc, "exceptions", None)  # an exception group (Python 3.11+, or the exceptiongroup backport)
    return isinstance(inner, (list, tuple)) and any(_aborted(e) for e in inner)


class QuietAborts(logging.Filter):
    """For uvicorn's error log: drops its traceback of a stream ended on purpose (StreamAborted), whose request is
    already logged as its own one line with the reason (`guarded`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _aborted(record.exc_info[1]))


class ServerState:
    """The engine and everything built on it, filled in by `load()` in a background thread."""

    def __init__(self, config: ServerConfig, engine: Engine | None = None,
                 on_failure: Callable[[BaseException], None] | None = None):
        self.config = config
        self.engine = engine
        self.podcast_engine: Engine | None = None
        self.voice_map: VoiceMap | None = None
        self.dispatcher: Dispatcher | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.podcasts = 0  # rendering now (changed on the event loop only)
        self.on_failure = on_failure
        self.metrics = Metrics(lambda: self.engine.stats if self.engine is not None else None,
                               lambda: self.dispatcher.pending if self.dispatcher is not None else 0)

    def load(self) -> None:
        """Build (or adopt) the engine, check the voice map, warm up; then ready. A failure is kept in `error`."""
        cfg = self.config
        started = time.monotonic()
        try:
            logs.event("loading", device=cfg.device or "default")
            if self.engine is None:
                device = resolve_device(cfg.device)
                turn = cfg.max_turn_items or TURN_ITEMS.get(device.type, TURN_ITEMS["cpu"])
                performance = replace(Performance.default(device, compile=cfg.compile, dtype=cfg.dtype),
                                      max_turn_items=turn)
                self.engine = Engine(None, device, voices=list(cfg.voice_files) or None, lexicon=cfg.lexicon,
                                     alphabet=cfg.alphabet, performance=performance)
            engine = self.engine
            self.voice_map = VoiceMap(engine.voice_bank, cfg.voice_map)
            self.voice_map.check()
            # podcasts cast by name: an engine sharing the renderer whose bank also knows every alias by name
            aliases = {a: engine.voice_bank.table(v) for a, v in self.voice_map.aliases.items() if a not in engine.voice_bank}
            extra = {name: engine.voice_bank.table(name) for name in engine.voices}
            self.podcast_engine = Engine(renderer=engine.renderer, voices={**extra, **aliases}, lexicon=cfg.lexicon,
                                         alphabet=cfg.alphabet)
            kind = engine.device.type if engine.device.type in QUEUE_ITEMS else "cpu"
            self.dispatcher = Dispatcher(engine, cfg.max_queue or QUEUE_ITEMS[kind])
            if cfg.warmup:
                report = engine.warmup()  # compiles and captures ahead of time (one tiny shape in eager mode)
                logs.event("warmup", seconds=round(report.seconds, 2), shapes=len(report.shapes),
                           graphs_captured=report.graphs_captured, compiled=report.compiled,
                           cache_hits=report.cache_hits, cache_misses=report.cache_misses)
                engine.synthesize(WARMUP_TEXT, seed=0)
        except BaseException as exc:  # noqa: BLE001 - reported by /health and the CLI
            self.error = exc
            logs.event("failed", 40, error=f"{type(exc).__name__}: {exc}")
            if self.on_failure is not None:
                self.on_failure(exc)
            return
        self.metrics.ready.set(1)
        self.ready.set()
        logs.event("ready", device=str(engine.device), seconds=round(time.monotonic() - started, 2),
                   max_turn_items=engine.renderer.performance.max_turn_items, max_queue=self.dispatcher.max_queue)

    def require_ready(self) -> None:
        if self.error is not None:
            raise ApiError(503, f"the speech engine failed to load: {self.error}", type="server_error",
                           code="engine_failed")
        if not self.ready.is_set():
            raise ApiError(503, "the speech engine is still loading; retry shortly", type="server_error",
                           code="engine_loading", headers={"Retry-After": "5"})

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


class BearerAuth:
    """ASGI middleware: with a key, every request needs `Authorization: Bearer <key>` (401 in OpenAI's shape)."""

    def __init__(self, app, key: str | None, metrics: Metrics):
        self.app, self.key, self.metrics = app, key, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.key is None:
            return await self.app(scope, receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").strip()
        scheme, _, token = auth.partition(" ")
        if not auth:
            error = ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                             "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        elif scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key.encode()):
            error = ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        else:
            return await self.app(scope, receive, send)
        self.metrics.requests.labels(ENDPOINTS.get(scope["path"], "other"), "401").inc()
        logs.event("request", endpoint=ENDPOINTS.get(scope["path"], "other"), status=401, error=error.message)
        response = JSONResponse(error.body(), 401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 once it passes `limit` bytes."""
    too_big = ApiError(413, f"the request body is larger than this server's limit of {limit} bytes",
                       code="request_too_large")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_big
    body = bytearray()
    async for part in request.stream():
        body.extend(part)
        if len(body) > limit:
            raise too_big
    return bytes(body)


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request, cancel: Callable[[], None]):
    """While inside, a client disconnect calls `cancel()` (used until a streaming response takes over)."""

    async def watch():
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                cancel()
                return

    task = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def segments_json(segments: list[Segment]) -> list[dict]:
    """Sentence segments with word timings, times in seconds rounded to milliseconds."""
    return [{"text": s.text, "start": round(s.start, 3), "end": round(s.end, 3),
             "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in s.words]}
            for s in segments]


def sse(event: dict) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def create_app(config: ServerConfig | None = None, engine: Engine | None = None,
               on_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The server's ASGI app. `engine`: use this engine instead of building one from `config` (its performance
    options, max_turn_items included, are then its own). `on_failure(exc)` runs if the engine fails to load."""
    cfg = config or ServerConfig()
    state = ServerState(cfg, engine, on_failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=state.load, name="voicegen-load", daemon=True).start()
        yield
        await run_in_threadpool(state.close)

    app = FastAPI(title="voicegen", summary="OpenAI-compatible text-to-speech", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.voicegen = state
    app.add_middleware(BearerAuth, key=cfg.api_key, metrics=state.metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = f"Invalid URL ({request.method} {request.url.path})" if exc.status_code in (404, 405) else str(exc.detail)
        return JSONResponse(ApiError(exc.status_code, message).body(), exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        if not isinstance(exc, StreamAborted):  # those are logged as the request's own line
            logs.logger.exception("unhandled error", extra={"fields": {"path": request.url.path}})
        return JSONResponse(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error").body(), 500)

    # ------------------------------------------------------------------ information
    @app.get("/health")
    async def health():
        body = {"status": "ok" if state.ready.is_set() else "failed" if state.error else "loading"}
        if state.error is not None:
            body["error"] = str(state.error)
        if state.ready.is_set():
            body.update(device=str(state.engine.device), voices=len(state.engine.voices),
                        queue_depth=state.dispatcher.pending)
        return JSONResponse(body, 200 if state.ready.is_set() else 503)

    @app.get("/metrics")
    async def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def model_card(model: str) -> dict:
        return {"id": model, "object": "model", "created": 0, "owned_by": "voicegen"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card(m) for m in MODELS]}

    @app.get("/v1/models/{model}")
    async def model(model: str):
        if model not in MODELS:
            raise ApiError(404, f"The model `{model}` does not exist; this server offers: {', '.join(MODELS)}",
                           param="model", code="model_not_found")
        return model_card(model)

    @app.get("/v1/audio/voices")
    async def voices():
        state.require_ready()
        vm = state.voice_map
        return {"voices": vm.names, "builtin": state.engine.voices,
                "aliases": {a: v for a, v in sorted(vm.aliases.items()) if a not in state.engine.voice_bank}}

    # ------------------------------------------------------------------ speech
    async def start_speech(request: Request, log: logs.RequestLog):
        """Check, resolve the voice, plan and queue a speech request (every refusal before any audio), then wait for
        its first chunk -> (params, job, the remaining chunks, the first Audio or None if the client went away)."""
        state.require_ready()
        params = SpeechParams.from_json(parse_json(await read_body(request, cfg.max_body_bytes)), cfg.max_input_chars)
        log.update(voice=params.voice, format=params.response_format, chars=len(params.input),
                   stream=params.stream_format if params.stream_format == "sse" else params.stream)
        try:
            voice = state.voice_map.resolve(params.voice)
        except VoiceError as e:
            raise bad_request(str(e), "voice") from None
        parts = state.engine.plan_parts(EngineRequest(params.input, voice, params.speed, params.seed, params.pitch))
        try:
            plan, more = await run_in_threadpool(next, parts)  # the first chunk only; the job plans the rest after it
        except ValueError as e:
            raise bad_request(str(e), "input") from None
        job = SpeechJob(state.dispatcher, plan, deadline=log.arrived + cfg.timeout,
                        rest=(lambda: next(parts)[0]) if more else None, estimate=estimate_chunks(params.input))
        chunks, first = await first_chunk(request, job, log)
        return params, job, chunks, first

    async def guarded(stream: AsyncIterator[bytes], job, log: logs.RequestLog) -> AsyncIterator[bytes]:
        """A streamed response body, ended without its final chunk (StreamAborted) if rendering fails or times out,
        so the client sees a cut body rather than a short file that looks whole; logs the status either way."""
        status, error = CLIENT_GONE, "client disconnected"
        try:
            async for piece in stream:
                yield piece
            status, error = 200, None
        except Exception as exc:
            api = failure(exc, log)
            status, error = (api.status, api.message) if api else (CLIENT_GONE, "client disconnected")
            raise StreamAborted(error) from None
        finally:
            job.cancel()
            job.record(log)
            log.finish(status, error)

    def failure(exc: BaseException, log: logs.RequestLog) -> ApiError | None:
        """The ApiError for a failure while rendering (None: the client went away)."""
        if isinstance(exc, Timeout):
            return ApiError(504, f"the request took longer than this server's timeout of {cfg.timeout:g} s",
                            type="server_error", code="timeout")
        if isinstance(exc, Cancelled):
            return None
        logs.logger.error("render failed", exc_info=exc, extra={"fields": {"id": log.id}})
        return ApiError(500, f"rendering failed: {type(exc).__name__}: {exc}", type="server_error")

    async def first_chunk(request: Request, job: SpeechJob, log: logs.RequestLog):
        """(chunk iterator, first Audio) once the first chunk is rendered; raises ApiError (504, 500) or returns
        None for the chunk when the client disconnected meanwhile."""
        chunks = job.chunks()
        try:
            async with cancel_on_disconnect(request, job.cancel):
                first = await chunks.__anext__()
        except BaseException as exc:
            job.cancel()
            if not isinstance(exc, Exception):
                raise
            error = failure(exc, log)
            if error is None:
                return chunks, None
            raise error from None
        log.first_audio(job.first_audio, job.queue_wait)
        return chunks, first

    def respond(handler):
        """Wrap a handler: log and count refusals made before the response started."""

        async def wrapped(request: Request):
            log = logs.RequestLog(handler.__name__, state.metrics, request.headers.get("x-request-id"))
            try:
                response = await handler(request, log)
            except ApiError as e:
                log.finish(e.status, e.message)
                raise
            except asyncio.CancelledError:
                log.finish(CLIENT_GONE, "cancelled")
                raise
            except Exception as e:
                log.finish(500, f"{type(e).__name__}: {e}")
                raise
            response.headers["X-Request-Id"] = log.id
            return response

        wrapped.__name__ = handler.__name__
        return wrapped

    def gone(log: logs.RequestLog, job: SpeechJob) -> Response:
        job.record(log)
        log.finish(CLIENT_GONE, "client disconnected")
        return Response(status_code=CLIENT_GONE)

    async def whole(request: Request, job: SpeechJob, chunks, first: Audio, fmt: str,
                    log: logs.RequestLog) -> tuple[Audio, bytes] | None:
        """A non-streamed response: the rest of the chunks joined after `first` into one Audio (cancelling the job if
        the client leaves) and encoded as `fmt`, the request logged as done -> (audio, encoded bytes); None if the
        client went away; a failure becomes its ApiError."""
        pieces = [first]
        try:
            async with cancel_on_disconnect(request, job.cancel):
                async for audio in chunks:
                    pieces.append(audio)
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            job.cancel()
            error = failure(exc, log)
            if error is None:
                return None
            raise error from None
        audio = _join(pieces)
        data = await run_in_threadpool(encode, audio.samples, fmt)
        job.record(log)
        log.finish(200)
        return audio, data

    async def speech(request: Request, log: logs.RequestLog) -> Response:
        params, job, chunks, first = await start_speech(request, log)
        if first is None:
            return gone(log, job)
        fmt = params.response_format
        headers = {"X-Request-Id": log.id}
        if params.stream_format == "audio" and not params.stream:
            done = await whole(request, job, chunks, first, fmt, log)
            if done is None:
                return gone(log, job)
            return Response(done[1], media_type=MEDIA_TYPES[fmt], headers=headers)

        sse_mode = params.stream_format == "sse"

        async def body() -> AsyncIterator[bytes]:
            enc = encoder(fmt, streaming=True)
            async for audio in _prepend(first, chunks):
                data = enc.write(audio.samples)
                if data:
                    yield sse({"type": "speech.audio.delta", "audio": b64(data)}) if sse_mode else data
            data = enc.close()
            if sse_mode:
                if data:
                    yield sse({"type": "speech.audio.delta", "audio": b64(data)})
                frames = int(round(job.audio_seconds * SAMPLE_RATE / SAMPLES_PER_FRAME))  # 40 Hz duration frames
                yield sse({"type": "speech.audio.done",
                           "usage": {"input_tokens": job.tokens, "output_tokens": frames,
                                     "total_tokens": job.tokens + frames}})
            elif data:
                yield data

        media = "text/event-stream" if sse_mode else MEDIA_TYPES[fmt]
        headers["Cache-Control"] = "no-cache"
        return StreamingResponse(guarded(body(), job, log), media_type=media, headers=headers)

    async def captioned(request: Request, log: logs.RequestLog) -> Response:
        params, job, chunks, first = await start_speech(request, log)
        if first is None:
            return gone(log, job)
        fmt = params.response_format
        if params.stream_format == "audio":
            done = await whole(request, job, chunks, first, fmt, log)
            if done is None:
                return gone(log, job)
            audio, data = done
            return JSONResponse({"audio": b64(data), "response_format": fmt, "sample_rate": SAMPLE_RATE,
                                 "duration": round(audio.duration, 3), "segments": segments_json(audio.segments)})

        async def body() -> AsyncIterator[bytes]:
            enc = encoder(fmt, streaming=True)
            async for audio in _prepend(first, chunks):
                yield sse({"type": "speech.audio.delta", "audio": b64(enc.write(audio.samples)),
                           "segments": segments_json(audio.segments)})
            tail = enc.close()
            if tail:
                yield sse({"type": "speech.audio.delta", "audio": b64(tail), "segments": []})
            yield sse({"type": "speech.audio.done", "duration": round(job.audio_seconds, 3)})

        return StreamingResponse(guarded(body(), job, log), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    # ------------------------------------------------------------------ podcast
    async def podcast(request: Request, log: logs.RequestLog) -> Response:
        from ..podcast import Script
        from ..podcast.render import mix_script, prepare
        from ..subtitles import to_json_transcript

        state.require_ready()
        params = PodcastParams.from_json(parse_json(await read_body(request, cfg.max_body_bytes)), cfg.max_script_chars)
        log.update(format=params.response_format, chars=len(params.script))
        engine = state.podcast_engine
        try:
            script = Script.from_str(params.script)
            script = prepare(engine, script, params.cast or None, params.speed)
        except ValueError as e:
            raise bad_request(str(e), "script") from None
        state.dispatcher.reserve(0)  # 429 when the queue is already full
        if state.podcasts >= cfg.max_podcasts:
            raise ApiError(429, f"the server is already rendering {state.podcasts} podcasts (at most {cfg.max_podcasts}); "
                           "retry later", type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "30"})
        named = {m.voice for m in script.cast.values() if m.voice}
        aliases = sorted(named - set(state.engine.voices))  # in the list only where the cast names them
        # the voices those aliases speak with are taken: automatic casting must not give them to anyone else
        taken = {state.voice_map.aliases.get(a.lower()) for a in aliases} - named
        available = [v for v in state.engine.voices if v not in taken] + aliases
        cast_from = [v for v in state.engine.voice_bank.builtin_names if v not in taken]  # as render_script casts
        log.update(voice=",".join(f"{s}={v}" for s, v in script.voices(available, cast_from).items()),
                   turns=len(script.turns))
        job = PodcastJob(state, params, deadline=log.arrived + cfg.timeout)
        state.podcasts += 1
        try:
            async with cancel_on_disconnect(request, job.cancel):
                audio = await run_in_threadpool(lambda: mix_script(script, job, voices=available, cast_from=cast_from,
                                                                     stereo=params.stereo))
                data = await run_in_threadpool(encode, audio.samples, params.response_format)
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            job.cancel()
            if isinstance(exc, FutureTimeout):
                exc = Timeout()
            elif isinstance(exc, FutureCancelled):
                exc = Cancelled()
            error = failure(exc, log)
            if error is None:
                log.finish(CLIENT_GONE, "client disconnected")
                return Response(status_code=CLIENT_GONE)
            raise error from None
        finally:
            state.podcasts -= 1
        log.audio_s = audio.duration
        log.finish(200)
        return JSONResponse({"audio": b64(data), "response_format": params.response_format, "sample_rate": audio.sample_rate,
                             "channels": audio.channels, "duration": round(audio.duration, 3),
                             "transcript": json.loads(to_json_transcript(audio.segments))})

    app.add_api_route("/v1/audio/speech", respond(speech), methods=["POST"])
    app.add_api_route("/v1/audio/speech/captioned", respond(captioned), methods=["POST"])
    app.add_api_route("/v1/audio/podcast", respond(podcast), methods=["POST"])
    return app


class PodcastJob:
    """The `synthesize_many` that `mix_script` calls (in a worker thread) for each window of a script: plans the
    pieces, queues every chunk at priority PODCAST and waits for them until the deadline. `cancel()` (from the
    event loop) drops the chunks not yet rendering; the waiting thread then raises."""

    def __init__(self, state: ServerState, params: PodcastParams, deadline: float):
        from ..podcast.render import piece_seed

        self.engine, self.dispatcher = state.podcast_engine, state.dispatcher
        self.params, self.deadline, self.piece_seed = params, deadline, piece_seed
        self.count = 0
        self.futures: list = []
        self.cancelled = False

    def __call__(self, requests):
        plans = []
        for text, voice, speed, pitch in requests:  # pitch: the cast's (header or automatic variant), semitones
            seed = self.piece_seed(self.params.seed, self.count)
            plans.append(self.engine.plan(EngineRequest(text, voice, speed * self.params.speed, seed, pitch)))
            self.count += 1
        items = [item for plan in plans for item in plan.items]
        self.dispatcher.reserve_when_room(len(items), self.deadline, lambda: self.cancelled)  # never past the bound
        futures = [self.dispatcher.submit([item], PODCAST) for item in items]
        self.futures.extend(futures)
        if self.cancelled:
            self.cancel()
        for future in futures:
            future.result(timeout=max(0.0, self.deadline - time.monotonic()))
        return [self.engine.assemble(plan) for plan in plans]

    def cancel(self) -> None:
        self.cancelled = True
        for future in list(self.futures):
            future.cancel()


async def _prepend(first: Audio, rest) -> AsyncIterator[Audio]:
    yield first
    async for audio in rest:
        yield audio


def _join(pieces: list[Audio]) -> Audio:
    """Chunks in order (each already followed by its pause) -> one Audio with all their segments."""
    import numpy as np

    samples = np.concatenate([p.samples for p in pieces]) if pieces else np.zeros(0, np.float32)
    return Audio(samples, SAMPLE_RATE, [s for p in pieces for s in p.segments])
