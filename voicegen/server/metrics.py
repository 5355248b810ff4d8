"""Prometheus metrics (`GET /metrics`), in a registry of the app's own so that several apps in one process
(tests) never collide.

| metric | kind | what |
|---|---|---|
| voicegen_requests_total{endpoint,status} | counter | requests answered, by HTTP status (499: client went away) |
| voicegen_audio_seconds_total{endpoint} | counter | seconds of audio sent |
| voicegen_input_characters_total{endpoint} | counter | characters of text accepted |
| voicegen_request_latency_seconds{endpoint} | histogram | arrival to last byte |
| voicegen_time_to_first_audio_seconds | histogram | arrival to the first chunk's audio being ready (speech) |
| voicegen_queue_wait_seconds | histogram | a request's first chunk, from submission to the start of its turn |
| voicegen_queue_depth | gauge | chunks admitted and not yet rendered |
| voicegen_active_requests | gauge | requests being answered |
| voicegen_batch_size | histogram | chunks per frame-phase batch (one forward pass), from the renderer's counters |
| voicegen_turn_size | histogram | chunks per worker turn (what one scheduling round gathered from all clients) |
| voicegen_ready | gauge | 1 once the engine is loaded and warmed up |
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _CounterHistogram:
    """A histogram built at scrape time from a {size: count} Counter (the renderer's RenderStats fields)."""

    def __init__(self, name: str, doc: str, counts: Callable[[], dict]):
        self.name, self.doc, self.counts = name, doc, counts

    def collect(self):
        counts = dict(self.counts())  # one copy: the worker thread may add to it meanwhile
        buckets, total = [], 0
        for le in SIZE_BUCKETS:
            total = sum(c for size, c in counts.items() if size <= le)
            buckets.append((str(le), total))
        buckets.append(("+Inf", sum(counts.values())))
        yield HistogramMetricFamily(self.name, self.doc, buckets=buckets,
                                    sum_value=sum(size * c for size, c in counts.items()))

    def describe(self):
        return []


class Metrics:
    """The server's metrics. `stats` returns the renderer's RenderStats (None before the engine is loaded);
    `depth` returns the queue depth."""

    def __init__(self, stats: Callable[[], object | None], depth: Callable[[], int]):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("voicegen_requests_total", "Requests answered, by endpoint and HTTP status",
                                ["endpoint", "status"], registry=r)
        self.audio_seconds = Counter("voicegen_audio_seconds_total", "Seconds of audio sent", ["endpoint"], registry=r)
        self.characters = Counter("voicegen_input_characters_total", "Characters of text accepted", ["endpoint"],
                                  registry=r)
        self.latency = Histogram("voicegen_request_latency_seconds", "Request arrival to last byte", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.ttfa = Histogram("voicegen_time_to_first_audio_seconds", "Request arrival to its first audio chunk ready",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("voicegen_queue_wait_seconds", "First chunk: submission to the start of its turn",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.depth = Gauge("voicegen_queue_depth", "Chunks admitted and not yet rendered", registry=r)
        self.depth.set_function(depth)
        self.active = Gauge("voicegen_active_requests", "Requests being answered", registry=r)
        self.ready = Gauge("voicegen_ready", "1 once the engine is loaded and warmed up", registry=r)

        def counts(name):
            return lambda: getattr(stats(), name, None) or {}

        r.register(_CounterHistogram("voicegen_batch_size", "Chunks per frame-phase batch (one forward pass)",
                                     counts("batch_items")))
        r.register(_CounterHistogram("voicegen_turn_size", "Chunks per worker turn (gathered from all clients)",
                                     counts("turn_items")))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
