"""Prometheus metrics of worker processes: how long jobs wait for a claim, render speed, outcomes.

A worker records into its own prometheus-client instruments. Supervised workers run in
prometheus-client's multiprocess mode: the supervisor starts each child with
``PROMETHEUS_MULTIPROC_DIR`` pointing at a directory of its own, the children write their
samples there, and whoever serves them (the API of ``musicstudio serve``, or
``musicstudio worker --metrics-port``) merges the directory with a ``MultiProcessCollector``.
Counts of a worker that exited stay in the sums, as counters should.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable

CLAIM_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
REALTIME_FACTOR_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
RENDER_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class WorkerMetrics:
    """The instruments one worker process records into."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.claim_latency = Histogram(
            "musicstudio_job_claim_latency_seconds",
            "Time from a job becoming claimable (submitted, or re-queued) to a worker claiming it.",
            buckets=CLAIM_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.render_realtime_factor = Histogram(
            "musicstudio_render_realtime_factor",
            "Seconds of audio an engine rendered per second of rendering, by engine.",
            ["engine"],
            buckets=REALTIME_FACTOR_BUCKETS,
            registry=self.registry,
        )
        self.render_duration = Histogram(
            "musicstudio_render_duration_seconds",
            "Wall time of an engine's render call, by engine.",
            ["engine"],
            buckets=RENDER_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "musicstudio_worker_attempts",
            "Attempts workers finished, by outcome "
            "(succeeded, failed, retried, cancelled, released, lost).",
            ["outcome"],
            registry=self.registry,
        )

    def rendered(self, engine: str, audio_seconds: float, wall_seconds: float) -> None:
        self.render_duration.labels(engine=engine).observe(wall_seconds)
        if wall_seconds > 0:
            self.render_realtime_factor.labels(engine=engine).observe(audio_seconds / wall_seconds)


class SharedMetricsDir:
    """A fresh directory for the multiprocess samples of one supervisor's children."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="musicstudio-metrics-"))

    def env(self) -> dict[str, str]:
        """Environment entries that put a child process in multiprocess mode."""
        return {MULTIPROC_ENV: str(self.path)}

    def registry(self) -> CollectorRegistry:
        """A registry that merges every child's samples at collection time."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.path))  # type: ignore[no-untyped-call]
        return registry

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
