"""`voicegen serve`: an OpenAI-compatible speech server that batches every client's sentences together and streams.

    pip install -e ".[server]"
    voicegen serve --port 8880            # then: OpenAI(base_url="http://127.0.0.1:8880/v1", api_key="-")

Modules: `app` (routes, streaming, the engine's lifecycle), `dispatch` (admission, priorities, cancellation),
`schema` (request fields, defaults, limits), `voices` (OpenAI's voice names), `encode` (response formats),
`errors` (OpenAI's error shape), `metrics` (Prometheus), `logs` (JSON lines), `config` (the limits).
FastAPI, uvicorn and prometheus-client are the `server` extra; `import voicegen` never imports them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]


def create_app(*args, **kwargs):
    """`voicegen.server.app.create_app` (imported on use: it needs the server extra)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8880, log_level: str = "info") -> None:
    """Run the server until interrupted. The voice map is checked before the port opens (ValueError); if the
    engine then fails to load, the server stops and RuntimeError says why."""
    import uvicorn

    from ..weights import VoiceBank
    from . import logs
    from .app import QuietAborts, create_app as _create_app
    from .voices import VoiceMap

    VoiceMap(VoiceBank(list(config.voice_files) or None), config.voice_map).check()
    logs.setup(log_level)
    logging.getLogger("uvicorn.error").addFilter(QuietAborts())  # an aborted stream is one request line, no traceback
    server: uvicorn.Server | None = None
    failed: list[BaseException] = []

    def on_failure(exc: BaseException) -> None:
        failed.append(exc)
        if server is not None:
            server.should_exit = True

    app = _create_app(config, on_failure=on_failure)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    logs.event("listening", host=host, port=port, auth=config.api_key is not None)
    with _hangup_stops(server):
        server.run()
    if failed:
        raise RuntimeError(f"the engine failed to load: {type(failed[0]).__name__}: {failed[0]}")


@contextlib.contextmanager
def _hangup_stops(server) -> Iterator[None]:
    """SIGHUP (the terminal closed) shuts the server down gracefully, as uvicorn does for SIGINT and SIGTERM, and
    is raised again once it has stopped (the command line then exits 129). Unless SIGHUP is ignored (nohup), or
    this is not the main thread, or there is no SIGHUP (Windows)."""
    hangup = getattr(signal, "SIGHUP", None)
    if (hangup is None or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(hangup) is signal.SIG_IGN):
        yield
        return
    hung_up = []

    def stop(signum, frame) -> None:
        hung_up.append(signum)
        server.should_exit = True

    previous = signal.signal(hangup, stop)
    try:
        yield
    finally:
        signal.signal(hangup, signal.SIG_DFL if previous is None else previous)
    if hung_up:
        signal.raise_signal(hangup)
