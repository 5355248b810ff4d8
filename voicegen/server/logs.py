"""Structured logs: one JSON object per line on standard error, one line per request when it ends.

A request's line holds `event` ("request"), `id` (also sent back as X-Request-Id; a client's own X-Request-Id is
kept), `endpoint`, `status` (499: the client went away), `voice`, `format`, `chars`, `chunks`, `audio_s`,
`latency_s` (arrival to last byte), `ttfa_s` (arrival to first audio ready), `queue_wait_s` (first chunk's wait
for its turn) and `error` when refused. Server events (`loading`, `ready`, `failed`) use the same format.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

logger = logging.getLogger("voicegen.server")


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "event", ...the record's `fields`} as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "event": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: str = "info", stream=None) -> None:
    """Send the server's logs, as JSON lines, to `stream` (standard error)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def event(name: str, level: int = logging.INFO, **fields) -> None:
    logger.log(level, name, extra={"fields": fields})


class RequestLog:
    """What is known about a request so far; `finish(status)` logs it and counts it in the metrics, once."""

    def __init__(self, endpoint: str, metrics, request_id: str | None = None):
        self.id = (request_id or uuid.uuid4().hex[:16])[:64]
        self.endpoint = endpoint
        self.metrics = metrics
        self.arrived = time.monotonic()
        self.fields: dict = {}
        self.audio_s = 0.0
        self.ttfa: float | None = None
        self.queue_wait: float | None = None
        self.done = False
        metrics.active.inc()

    def update(self, **fields) -> None:
        self.fields.update(fields)

    def first_audio(self, at: float, queue_wait: float | None) -> None:
        self.ttfa = at - self.arrived
        self.queue_wait = queue_wait
        self.metrics.ttfa.observe(self.ttfa)
        if queue_wait is not None:
            self.metrics.queue_wait.observe(queue_wait)

    def finish(self, status: int, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        latency = time.monotonic() - self.arrived
        m = self.metrics
        m.active.dec()
        m.requests.labels(self.endpoint, str(status)).inc()
        m.latency.labels(self.endpoint).observe(latency)
        if self.audio_s:
            m.audio_seconds.labels(self.endpoint).inc(self.audio_s)
        if status < 400 and "chars" in self.fields:
            m.characters.labels(self.endpoint).inc(self.fields["chars"])
        fields = {"id": self.id, "endpoint": self.endpoint, "status": status, **self.fields,
                  "audio_s": round(self.audio_s, 3), "latency_s": round(latency, 3)}
        if self.ttfa is not None:
            fields["ttfa_s"] = round(self.ttfa, 3)
        if self.queue_wait is not None:
            fields["queue_wait_s"] = round(self.queue_wait, 3)
        if error:
            fields["error"] = error
        event("request", logging.WARNING if status >= 500 else logging.INFO, **fields)
