"""awa-pg's admin calls on both clients (docs/awa-pg-compatibility.md).

``cancel(job_id)`` / ``retry(job_id)`` act on a job by id; given a
``run_lease`` they are the worker-side, lease-guarded calls of
:class:`~awa.client.api.ClientAPI` as before. ``get_job`` raises for a
missing id (``find_job`` returns None). ``retry_failed``, ``discard_failed``,
``drain_queue``, ``flush_admin_metadata`` and ``health_check`` complete the
set. Every method returns a value on the sync client and an awaitable on the
async one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awa.errors import AwaError
from awa.storage import bulk_admin
from awa.storage.bulk_admin import RetryFailedResult
from awa.storage.validate import is_int


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """One queue of the local worker runtime (awa-pg's names).

    ``in_flight``: jobs its handlers run now; ``available``: jobs waiting in
    the queue; ``max_workers``: its slots (shared by the partitions of a
    shared-slots entry). ``min_workers``, ``weight``, ``overflow_held``:
    awa-pg's weighted mode, None here.
    """

    in_flight: int
    available: int
    max_workers: int | None
    min_workers: int | None = None
    weight: int | None = None
    overflow_held: int | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """``healthy`` is true when the database answers and this client's worker
    runtime claims, heartbeats and is not shutting down."""

    healthy: bool
    postgres_connected: bool
    poll_loop_alive: bool
    heartbeat_alive: bool
    shutting_down: bool
    leader: bool
    queues: dict[str, QueueHealth] = field(default_factory=dict)


def then(result: Any, finish: Callable[[Any], Any]) -> Any:
    """``finish(result)``, after awaiting ``result`` when it is awaitable."""
    if inspect.isawaitable(result):
        async def wait() -> Any:
            return finish(await result)

        return wait()
    return finish(result)


def _job_or_raise(job_id: int) -> Callable[[Any], Any]:
    def check(job: Any) -> Any:
        if job is None:
            raise AwaError(f"job not found: {job_id}")
        return job

    return check


class CompatAPI:
    """Mixed in before :class:`~awa.client.api.ClientAPI` by both clients."""

    _core: Any
    _drive: Callable[..., Any]

    # -- by id -------------------------------------------------------------

    def cancel(self, job_id: int, run_lease: int | None = None) -> Any:
        """awa-pg's ``cancel(job_id)``: cancel a job that has not finished; the
        cancelled Job, or None when there is no such job or it has finished.
        A running job's handler sees ``job.is_cancelled()`` at its next heartbeat.

        With ``run_lease``: the worker-side call, applied only while that
        attempt holds the job; True when applied.
        """
        if run_lease is None:
            return self.cancel_job(job_id)  # type: ignore[attr-defined]
        return super().cancel(job_id, run_lease)  # type: ignore[misc]

    def retry(
        self, job_id: int, run_lease: int | None = None, after_seconds: float | None = None, error: Any = None
    ) -> Any:
        """awa-pg's ``retry(job_id)``: a failed or cancelled job back to work
        (attempts reset); the Job, or None when it is not failed or cancelled.

        With ``run_lease``: the worker-side call (retry this attempt later,
        after ``after_seconds`` or the backoff); True when applied.
        """
        if run_lease is None:
            if after_seconds is not None or error is not None:
                raise TypeError("retry(job_id) takes no after_seconds or error; they need the attempt's run_lease")
            return self.retry_job(job_id)  # type: ignore[attr-defined]
        return super().retry(job_id, run_lease, after_seconds, error)  # type: ignore[misc]

    def get_job(self, job_id: int) -> Any:
        """The job with this id; :class:`~awa.errors.AwaError` ``job not found: ID``
        when there is none (never enqueued, deleted by retention, or moved to
        the dead-letter queue: see :meth:`get_dlq_job`)."""
        return then(self.find_job(job_id), _job_or_raise(job_id))

    def find_job(self, job_id: int) -> Any:
        """The job with this id, or None."""
        return super().get_job(job_id)  # type: ignore[misc]

    def worker(self, args_type: Any, *, kind: str | None = None, queue: str = "default") -> Any:
        """awa-pg's other name for :meth:`task`."""
        return self.task(args_type, kind=kind, queue=queue)  # type: ignore[attr-defined]

    def dlq_depth_by_queue(self) -> Any:
        """``[(queue, dead-lettered jobs), ...]`` for every queue that has some."""
        return then(
            self.queue_stats(),  # type: ignore[attr-defined]
            lambda stats: [(s.queue, s.dead_lettered) for s in stats if s.dead_lettered],
        )

    # -- in bulk -----------------------------------------------------------

    def retry_failed(self, *, kind: str | None = None, queue: str | None = None) -> Any:
        """Every failed job of ``kind`` or of ``queue`` (exactly one) back to
        work; a :class:`RetryFailedResult`."""
        return self._drive(bulk_admin.retry_failed(self._core, kind, queue))

    def discard_failed(self, kind: str) -> Any:
        """Delete every failed job of ``kind``; the number deleted."""
        return self._drive(bulk_admin.discard_failed(self._core, kind), tx=False)

    def drain_queue(self, queue: str) -> Any:
        """Cancel every job of the (physical) queue that has not started
        (scheduled, available, retryable); the number cancelled. Running jobs
        finish."""
        return self._drive(bulk_admin.drain_queue(self._core, queue))

    def flush_admin_metadata(self) -> Any:
        """Fold every finished job into the stored counts now, so
        ``queue_stats()`` is exact without a maintenance leader; None."""
        return then(self.rollup_terminal_counts(lag_seconds=0.0), lambda _n: None)  # type: ignore[attr-defined]

    def health_check(self) -> Any:
        """A :class:`HealthCheck` of the database and this client's worker runtime."""
        runtime = self.worker_health()  # type: ignore[attr-defined]
        try:
            probe = self._drive(_probe(self._core, runtime is not None), tx=False, checked=False)
        except Exception:  # noqa: BLE001 - an unreachable database is a result here
            return _health(runtime, None)
        if inspect.isawaitable(probe):
            async def wait() -> HealthCheck:
                try:
                    found = await probe
                except Exception:  # noqa: BLE001
                    found = None
                return _health(runtime, found)

            return wait()
        return _health(runtime, probe)


def _probe(core: Any, with_stats: bool) -> Any:
    ok = yield from bulk_admin.ping(core)
    stats = (yield from core.queue_stats(None)) if with_stats else []
    return ok, {s.queue: s.available for s in stats}


def _health(runtime: dict[str, Any] | None, probe: tuple[bool, dict[str, int]] | None) -> HealthCheck:
    connected = bool(probe and probe[0])
    available = probe[1] if probe else {}
    if runtime is None:
        return HealthCheck(False, connected, False, False, False, False, {})
    running = bool(runtime.get("running"))
    heartbeat = running and bool(runtime.get("heartbeat_alive", True))
    stopping = bool(runtime.get("shutting_down"))
    queues = {
        name: QueueHealth(
            in_flight=int(q.get("in_flight", 0)),
            available=int(available.get(name, 0)),
            max_workers=q.get("capacity") if is_int(q.get("capacity")) else None,
        )
        for name, q in runtime.get("queues", {}).items()
    }
    return HealthCheck(
        healthy=connected and running and heartbeat and not stopping,
        postgres_connected=connected,
        poll_loop_alive=running,
        heartbeat_alive=heartbeat,
        shutting_down=stopping,
        leader=bool(runtime.get("leader")),
        queues=queues,
    )


__all__ = ["CompatAPI", "HealthCheck", "QueueHealth", "RetryFailedResult"]
