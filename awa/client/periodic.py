"""Periodic (cron) jobs on the clients: awa-pg's ``periodic`` and the schedule admin."""

from __future__ import annotations

from typing import Any

from awa.errors import ValidationError
from awa.storage.batch import kind_for_type, prepare
from awa.storage.codec import loads
from awa.worker.cron import periodic_job


class PeriodicAPI:
    """Mixed into both clients; ``periodic`` is plain (no I/O), the rest run on the executor."""

    _core: Any

    def periodic(
        self,
        name: str,
        cron_expr: str,
        args_type: type,
        args: Any,
        *,
        timezone: str = "UTC",
        queue: str = "default",
        priority: int = 2,
        max_attempts: int = 25,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        missed_fire_policy: str = "coalesce",
        kind: str | None = None,
    ) -> None:
        """Register a schedule (awa-pg's signature): a job of ``args`` on every
        tick of the 5-field ``cron_expr`` in ``timezone``. Validated now; written
        to the database when this client's worker starts, whose runtime then
        fires it (exactly one job per tick across every runtime).
        ``missed_fire_policy``: ``"coalesce"`` (after downtime only the latest
        missed tick fires) or ``"catch_up"`` (each missed tick, in order)."""
        if not isinstance(args_type, type):
            raise ValidationError("args_type must be a class")
        if not isinstance(args, args_type):
            raise ValidationError(f"args must be an instance of {args_type.__name__}")
        batch = prepare(
            [args], kind=kind or kind_for_type(args_type), queue=queue, priority=priority,
            max_attempts=max_attempts, tags=tags, metadata=metadata, run_at=None, ordering_key=None, opts=None,
        )
        job = periodic_job(
            name, cron_expr, batch.kind, loads(batch.args_text[0]), timezone=timezone, queue=queue,
            priority=priority, max_attempts=max_attempts, tags=tags, metadata=metadata,
            missed_fire_policy=missed_fire_policy,
        )
        self._registry().periodic[job.name] = job  # type: ignore[attr-defined]

    def periodic_jobs(self) -> list[Any]:
        """The schedules registered on this client (not yet necessarily in the database)."""
        return list(self._registry().periodic.values())  # type: ignore[attr-defined]

    def sync_cron_jobs(self) -> Any:
        """Write this client's schedules to the database now (the worker does it at start)."""
        return self._drive(_all(self._core, self.periodic_jobs()), tx=True)  # type: ignore[attr-defined]

    def list_cron_jobs(self) -> Any:
        """Every schedule in the database, by name (:class:`~awa.storage.cron_ops.CronJob`)."""
        return self._drive(self._core.list_cron_jobs(), tx=False)  # type: ignore[attr-defined]

    def delete_cron_job(self, name: str) -> Any:
        """Delete a schedule and its fire records; True when it existed. Its
        definition comes back if a worker that registers it starts again."""
        return self._drive(self._core.delete_cron_job(name), tx=False)  # type: ignore[attr-defined]

    def pause_cron_job(self, name: str, paused_by: str | None = None) -> Any:
        """Stop automatic fires (jobs already enqueued still run); True when it exists."""
        return self._drive(self._core.pause_cron_job(name, True, paused_by), tx=False)  # type: ignore[attr-defined]

    def resume_cron_job(self, name: str) -> Any:
        """Fire again; the missed-fire policy decides what the pause missed."""
        return self._drive(self._core.pause_cron_job(name, False), tx=False)  # type: ignore[attr-defined]


def _all(core: Any, jobs: list[Any]) -> Any:
    for job in jobs:
        yield from core.upsert_cron_job(job)
    return len(jobs)


__all__ = ["PeriodicAPI"]
