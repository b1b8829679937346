"""Worker metrics per physical queue, exported to OpenTelemetry when it is installed.

Instruments (meter ``awa``; every point carries ``awa.queue``, the physical queue):

==========================  =========  ===================================================
name                        unit       what
==========================  =========  ===================================================
awa.job.claimed             {job}      jobs claimed
awa.job.completed           {job}      jobs completed (lease still held)
awa.job.failed              {job}      attempts that failed: ``awa.outcome`` = retryable,
                                       failed or dead_lettered
awa.job.retried             {job}      failed attempts that will run again (retryable)
awa.job.rescued             {job}      running jobs rescued by the maintenance leader
                                       (stale heartbeat or passed deadline)
awa.job.pruned              {job}      finished jobs deleted by retention (``awa.state``)
awa.job.pickup_latency      s          claim time minus the time the job became due
awa.job.run_time            s          handler run time, per attempt
==========================  =========  ===================================================

The in-process totals (:meth:`WorkerMetrics.snapshot`) count the same events
without OpenTelemetry.
"""

from __future__ import annotations

import threading
from typing import Any

try:  # OpenTelemetry is optional.
    from opentelemetry import metrics as _otel_metrics
except ImportError:  # pragma: no cover - depends on the environment
    _otel_metrics = None

COUNTERS = {
    "claimed": "jobs claimed",
    "completed": "jobs completed",
    "failed": "attempts that failed (awa.outcome: retryable, failed, dead_lettered)",
    "retried": "failed attempts that will run again",
    "rescued": "running jobs rescued by the maintenance leader",
    "pruned": "finished jobs deleted by retention",
}
HISTOGRAMS = {
    "pickup_latency": "seconds from due (run_at) to claimed",
    "run_time": "seconds a handler ran, per attempt",
}


class WorkerMetrics:
    def __init__(self, meter: Any = None) -> None:
        if meter is None and _otel_metrics is not None:
            meter = _otel_metrics.get_meter("awa")
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], int] = {}
        self._counters: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}
        if meter is not None:
            for name, text in COUNTERS.items():
                self._counters[name] = meter.create_counter(f"awa.job.{name}", unit="{job}", description=text)
            for name, text in HISTOGRAMS.items():
                self._histograms[name] = meter.create_histogram(f"awa.job.{name}", unit="s", description=text)

    def _count(self, name: str, queue: str, n: int = 1, **attrs: str) -> None:
        if n <= 0:
            return
        with self._lock:
            key = (name, queue)
            self._totals[key] = self._totals.get(key, 0) + n
        counter = self._counters.get(name)
        if counter is not None:
            counter.add(n, {"awa.queue": queue, **{f"awa.{k}": v for k, v in attrs.items()}})

    def _observe(self, name: str, queue: str, seconds: float) -> None:
        histogram = self._histograms.get(name)
        if histogram is not None:
            histogram.record(max(seconds, 0.0), {"awa.queue": queue})

    def claimed(self, queue: str, n: int, pickup_latencies: list[float]) -> None:
        self._count("claimed", queue, n)
        for seconds in pickup_latencies:
            self._observe("pickup_latency", queue, seconds)

    def claimed_jobs(self, jobs: list[Any]) -> None:
        """Count a claim's jobs per queue, with each one's pickup latency
        (claimed minus due: the later of run_at and created_at)."""
        by_queue: dict[str, list[float]] = {}
        for raw in jobs:
            due = raw.run_at if raw.run_at > raw.created_at else raw.created_at
            latency = (raw.attempted_at - due).total_seconds() if raw.attempted_at is not None else 0.0
            by_queue.setdefault(raw.queue, []).append(latency)
        for queue, latencies in by_queue.items():
            self.claimed(queue, len(latencies), latencies)

    def completed(self, queue: str, n: int = 1) -> None:
        self._count("completed", queue, n)

    def ran(self, queue: str, seconds: float) -> None:
        self._observe("run_time", queue, seconds)

    def failed(self, queue: str, outcome: str) -> None:
        self._count("failed", queue, 1, outcome=outcome)
        if outcome in ("retryable", "available"):
            self._count("retried", queue, 1)

    def rescued(self, queue: str, n: int = 1) -> None:
        self._count("rescued", queue, n)

    def pruned(self, queue: str, state: str, n: int) -> None:
        self._count("pruned", queue, n, state=state)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{counter name: {physical queue: total}}`` counted by this process."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (name, queue), n in sorted(self._totals.items()):
                out.setdefault(name, {})[queue] = n
            return out
