"""Prometheus metrics for ``/metrics``.

Each app gets its own registry (tests build many apps). Under gunicorn with several workers,
``prelabel serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so every worker's samples are aggregated
at scrape time instead of answering with whichever worker the scrape happened to hit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from prelabel._engine.runner import RunStats

__all__ = ["Telemetry"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100)


class _JobCollector(Collector):
    """Reads job counts and live training workers at scrape time (they live in SQLite)."""

    def __init__(
        self, counts: Callable[[], Mapping[str, int]], workers: Callable[[], int] | None
    ) -> None:
        self.counts = counts
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("prelabel_jobs", "Training jobs by status.", labels=["status"])
        for status, n in sorted(self.counts().items()):
            family.add_metric([status], n)
        yield family
        if self.workers is not None:
            yield GaugeMetricFamily(
                "prelabel_training_workers",
                "Training workers seen alive (0 while jobs can only queue).",
                value=self.workers(),
            )


class Telemetry:
    """The server's metrics, registered in a private registry."""

    def __init__(
        self,
        backend: str,
        job_counts: Callable[[], Mapping[str, int]],
        live_workers: Callable[[], int] | None = None,
    ) -> None:
        self.backend = backend
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.requests = Counter(
            "prelabel_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "prelabel_request_seconds",
            "Request latency by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "prelabel_predictions",
            "Task predictions by outcome (predicted, empty, failed, control).",
            ["backend", "outcome"],
            registry=self.registry,
        )
        self.regions = Counter(
            "prelabel_regions",
            "Regions returned to Label Studio.",
            ["backend"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "prelabel_webhook_events",
            "Webhook events by action.",
            ["action"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "prelabel_model_version_info",
            "Model version last reported to Label Studio, per project (value is always 1).",
            ["backend", "project", "version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._versions: dict[str, str] = {}
        self.job_collector = _JobCollector(job_counts, live_workers)
        self.registry.register(self.job_collector)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_run(self, stats: RunStats) -> None:
        for outcome in ("predicted", "empty", "failed", "control"):
            n = getattr(stats, outcome)
            if n:
                self.predictions.labels(self.backend, outcome).inc(n)
        if stats.regions:
            self.regions.labels(self.backend).inc(stats.regions)

    def observe_version(self, project: str, version: str) -> None:
        old = self._versions.get(project)
        if old == version:
            return
        if old is not None:
            self.model_version.remove(self.backend, project, old)
        self._versions[project] = version
        self.model_version.labels(self.backend, project, version).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self.job_collector)
        return generate_latest(registry)
