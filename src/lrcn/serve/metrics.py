"""The server's Prometheus metrics, in a registry of the app's own.

Every app gets its own :class:`~prometheus_client.CollectorRegistry` (not the process-wide
default), so several apps in one process (tests, a benchmark) never collide on metric names
and each ``/metrics`` shows only its own models.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["ServeMetrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServeMetrics:
    """Request counts and latency per model, queue depth per model, files per predictor call,
    and uploads refused by reason."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lrcn_serve_requests",
            "Predict requests by model and HTTP status code.",
            ["model", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lrcn_serve_request_seconds",
            "Predict request latency (upload, queue, prediction) by model.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "lrcn_serve_queue_depth",
            "Requests waiting for a worker, by model.",
            ["model"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "lrcn_serve_batch_size",
            "Files per predictor call (micro-batching), by model.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "lrcn_serve_uploads_rejected",
            "Uploads refused before prediction, by reason.",
            ["reason"],
            registry=self.registry,
        )

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the model's queue depth whenever the metrics are read."""
        self.queue_depth.labels(model=model).set_function(depth)

    def batch_observer(self, model: str) -> Callable[[int], None]:
        """The callback a model's batcher calls with the size of every predictor call."""
        return self.batch_size.labels(model=model).observe

    def observe_request(self, model: str, code: int, seconds: float) -> None:
        """Count one finished predict request and its latency."""
        self.requests.labels(model=model, code=str(code)).inc()
        self.latency.labels(model=model).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
