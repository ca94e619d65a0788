"""Prometheus metrics of an API process: request latency, and the queue read at scrape time.

Each app has its own registry (tests build many apps in one process). Request latency is
labelled by route template (``/v1/music/{organization_id}/generations``), never by raw path, so the
label set stays small. The queue figures are read from the database when ``/metrics`` is
scraped: every API process reports the same shared queue.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicstudio.queue import QueueState
from musicstudio.worker.metrics import SharedMetricsDir

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The registry and the instruments of one API app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "musicstudio_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._latency_children: dict[tuple[str, str, int], Histogram] = {}
        self.jobs = Gauge(
            "musicstudio_jobs",
            "Jobs in a live state (queued, running).",
            ["status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "musicstudio_queue_depth",
            "Queued jobs a worker may claim now.",
            registry=self.registry,
        )
        self.queue_wait = Gauge(
            "musicstudio_queue_oldest_wait_seconds",
            "How long the oldest claimable job has been waiting for a worker.",
            registry=self.registry,
        )

    def latency_of(self, method: str, route: str, status: int) -> Histogram:
        """The latency histogram of one label set (looked up once: ``labels()`` is not free)."""
        method = method if method in _KNOWN_METHODS else "other"  # clients choose the method
        key = (method, route, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.http_latency.labels(
                method, route, str(status)
            )
        return child

    def include_workers(self, samples: SharedMetricsDir) -> None:
        """Serve the metrics of the workers this process supervises beside its own."""
        MultiProcessCollector(self.registry, path=str(samples.path))  # type: ignore[no-untyped-call]

    def record_queue(self, state: QueueState) -> None:
        self.jobs.labels(status="queued").set(state.queued)
        self.jobs.labels(status="running").set(state.running)
        self.queue_depth.set(state.claimable)
        self.queue_wait.set(state.oldest_claimable_seconds)


class MetricsMiddleware:
    """Times every HTTP request (pure ASGI, like the request-id middleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency_of(scope["method"], template, status).observe(
                time.perf_counter() - started
            )
