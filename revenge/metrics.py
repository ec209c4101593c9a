"""Prometheus metrics: one registry per app, created in ``create_app``'s lifespan (no global
collectors). Subsystems receive the ``Metrics`` object and record into it; ``revenge.web.metrics``
serves it and times responses."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ENCODE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every metric the server exports. Subsystems receive this object and record into it."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.sessions_active = Gauge("revenge_sessions_active", "Playback sessions now open", registry=r)
        self.sessions_started = Counter(
            "revenge_sessions_started", "Playback sessions started", ["decision", "profile"], registry=r)
        self.segment_requests = Counter(
            "revenge_segment_requests", "HLS media segment requests by cache result", ["cache"], registry=r)
        self.encode_seconds = Histogram(
            "revenge_encode_seconds", "Time to encode one HLS segment", ["profile"], buckets=_ENCODE,
            registry=r)
        self.encode_queue_depth = Gauge(
            "revenge_encode_queue_depth", "Encodes waiting for or running on the pool", ["kind"], registry=r)
        self.encodes_dropped = Counter(
            "revenge_encodes_dropped", "Queued encodes dropped before they ran (nobody waits, or the "
            "listener's session ended)", ["kind"], registry=r)
        self.ttfb_seconds = Histogram(
            "revenge_http_ttfb_seconds", "Time to the first byte of the response, per route", ["route"],
            buckets=_FAST, registry=r)
        self.responses_unavailable = Counter(
            "revenge_http_503", "Requests answered 503 (back-pressure or store outage)", ["route"],
            registry=r)
        self.progress_batch_size = Histogram(
            "revenge_progress_batch_size", "Progress updates per store round trip", buckets=_BATCH,
            registry=r)
        self.progress_flush_seconds = Histogram(
            "revenge_progress_flush_seconds", "Store round trip of one progress batch", ["store"],
            buckets=_FAST, registry=r)
        self.store_errors = Counter(
            "revenge_store_errors", "Failed store operations", ["store"], registry=r)
        self.store_ping_seconds = Histogram(
            "revenge_store_ping_seconds", "Store round trip measured by /healthz", ["store"], buckets=_FAST,
            registry=r)
        self.library_rescans = Counter(
            "revenge_library_rescans", "Folders rescanned for the library watcher's changes", registry=r)
        self.library_watch_restarts = Counter(
            "revenge_library_watch_restarts", "Library watcher restarts after a failure", registry=r)
        # Route label → its time-to-first-byte child: ``labels()`` validates and locks on every call, and
        # this is paid on every response. Labels are route templates, so the dict stays small.
        self._ttfb_children: dict[str, Any] = {}

    def response_started(self, route: str, status: int, seconds: float) -> None:
        """One response's first byte, ``seconds`` after its request came in, on route template ``route``."""
        child = self._ttfb_children.get(route)
        if child is None:
            child = self._ttfb_children[route] = self.ttfb_seconds.labels(route)
        child.observe(seconds)
        if status == 503:
            self.responses_unavailable.labels(route).inc()

    def progress_flush(self, store: str, size: int, seconds: float, ok: bool) -> None:
        self.progress_batch_size.observe(size)
        self.progress_flush_seconds.labels(store).observe(seconds)
        if not ok:
            self.store_errors.labels(store).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
