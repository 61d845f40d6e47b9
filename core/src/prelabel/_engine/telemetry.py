"""Prometheus metrics for ``/metrics``.

Each app gets its own registry (tests build many apps). Under gunicorn with several workers,
``prelabel serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so every worker's samples are aggregated
at scrape time instead of answering with whichever worker the scrape happened to hit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from prelabel._engine.runner import RunStats

__all__ = ["Telemetry"]

#: At most this many projects' served versions are exported: projects come from /setup, and
#: callers must not be able to grow /metrics without bound. Every other label value comes from
#: a closed set (routes, status codes, LS's webhook actions, outcomes) or is capped likewise.
MAX_VERSION_SERIES = 1000
#: Distinct (reason, name) pairs of ``prelabel_dropped_total`` a process reports by name; the
#: rest are summed under ``name="other"`` so a model with a huge vocabulary cannot flood /metrics.
MAX_DROPPED_SERIES = 200

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100)


class _StoreCollector(Collector):
    """Reads at scrape time what lives in SQLite: jobs, live training workers, served versions.

    Read, not counted: a version promoted by the training process or rolled back through
    another server worker is what the next scrape shows, whichever worker answers it.
    """

    def __init__(
        self,
        backend: str,
        counts: Callable[[], Mapping[str, int]],
        workers: Callable[[], int] | None,
    ) -> None:
        self.backend = backend
        self.counts = counts
        self.workers = workers
        self.served_versions: Callable[[], Mapping[str, str]] | None = None

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
        if self.served_versions is not None:
            versions = GaugeMetricFamily(
                "prelabel_model_version_info",
                "The model version each project is served with (value is always 1).",
                labels=["backend", "project", "version"],
            )
            served = sorted(self.served_versions().items())
            for project, version in served[:MAX_VERSION_SERIES]:
                versions.add_metric([self.backend, project, version], 1)
            yield versions


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
            "Webhook events by action (LS's actions by name, anything else as 'other').",
            ["action"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "prelabel_dropped",
            "What a backend's model found but its results leave out, by reason and name.",
            ["backend", "reason", "name"],
            registry=self.registry,
        )
        self._dropped_series: set[tuple[str, str]] = set()
        self.store_collector = _StoreCollector(backend, job_counts, live_workers)
        self.registry.register(self.store_collector)

    def watch_versions(self, served_versions: Callable[[], Mapping[str, str]]) -> None:
        """Report ``served_versions()`` (``{project: version}``) as ``prelabel_model_version_info``."""
        self.store_collector.served_versions = served_versions

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

    def count_dropped(self, reason: str, name: str, count: int) -> None:
        """Count ``count`` things dropped for ``reason`` (see ``Context.count_dropped``)."""
        series = (reason, name)
        if series not in self._dropped_series:
            if len(self._dropped_series) >= MAX_DROPPED_SERIES:
                name = "other"
            else:
                self._dropped_series.add(series)
        self.dropped.labels(self.backend, reason, name).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self.store_collector)
        return generate_latest(registry)
