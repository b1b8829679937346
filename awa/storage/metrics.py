"""Enqueue counters per routed (physical) queue, optionally exported to OpenTelemetry.

A batch whose jobs land in four partitions counts one batch and its jobs for
each of the four physical queues, not for the batch's default queue.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

try:  # OpenTelemetry is optional; without it the counters stay in-process.
    from opentelemetry import metrics as _otel_metrics
except ImportError:  # pragma: no cover - depends on the environment
    _otel_metrics = None


@dataclass(frozen=True, slots=True)
class QueueEnqueueCounts:
    jobs: int
    batches: int


class EnqueueMetrics:
    def __init__(self, meter: Any = None) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, int] = {}
        self._batches: dict[str, int] = {}
        self._otel_jobs: Any = None
        self._otel_batches: Any = None
        if meter is None and _otel_metrics is not None:
            meter = _otel_metrics.get_meter("awa")
        self.meter = meter  # the worker's metrics use the same one (awa.worker.metrics)
        if meter is not None:
            self._otel_jobs = meter.create_counter(
                "awa.enqueue.jobs", unit="{job}", description="Jobs enqueued, per physical queue"
            )
            self._otel_batches = meter.create_counter(
                "awa.enqueue.batches", unit="{batch}", description="Enqueue calls that wrote to a physical queue"
            )

    def record(self, jobs_per_queue: Mapping[str, int]) -> None:
        with self._lock:
            for queue, n in jobs_per_queue.items():
                self._jobs[queue] = self._jobs.get(queue, 0) + n
                self._batches[queue] = self._batches.get(queue, 0) + 1
        if self._otel_jobs is not None:
            for queue, n in jobs_per_queue.items():
                attrs = {"awa.queue": queue}
                self._otel_jobs.add(n, attrs)
                self._otel_batches.add(1, attrs)

    def snapshot(self) -> dict[str, QueueEnqueueCounts]:
        with self._lock:
            return {q: QueueEnqueueCounts(self._jobs[q], self._batches[q]) for q in sorted(self._jobs)}

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._batches.clear()
