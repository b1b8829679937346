"""Storage operations of periodic (cron) jobs (no I/O).

A schedule's definition lives in ``cron_jobs``; ``cron_fire`` enqueues the
job of one tick and records the tick in the same transaction, keyed by
(name, tick), so every tick gives at most one job however many runtimes
evaluate the schedule (``specs/Cron.tla``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from awa.storage.codec import dumps
from awa.storage.models import Job
from awa.storage.ops import Op, OpsBase, Query, jobs_of
from awa.storage.validate import check_name

MISSED_FIRE_POLICIES = ("coalesce", "catch_up")


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A validated schedule definition (what ``client.periodic`` registers)."""

    name: str
    cron_expr: str
    timezone: str
    kind: str
    queue: str
    args: dict[str, Any]
    priority: int = 2
    max_attempts: int = 25
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    missed_fire_policy: str = "coalesce"


@dataclasses.dataclass(frozen=True, slots=True)
class CronJob:
    """One row of ``cron_jobs`` (awa's ``CronJobRow``)."""

    name: str
    cron_expr: str
    timezone: str
    kind: str
    queue: str
    args: Any
    priority: int
    max_attempts: int
    tags: list[str]
    metadata: dict[str, Any]
    missed_fire_policy: str
    last_enqueued_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    paused_at: dt.datetime | None
    paused_by: str | None

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[CronJob]:
        out = []
        for row in rows:
            r = dict(zip(names, row))
            r["tags"] = list(r["tags"] or [])
            r["metadata"] = dict(r["metadata"] or {})
            out.append(cls(**r))
        return out


class CronOps(OpsBase):
    def upsert_cron_job(self, job: PeriodicJob) -> Op:
        yield Query(
            self.q("cron_upsert"),
            {
                "name": job.name, "cron_expr": job.cron_expr, "timezone": job.timezone, "kind": job.kind,
                "queue": job.queue, "args": dumps(job.args), "priority": job.priority,
                "max_attempts": job.max_attempts, "tags": list(job.tags), "metadata": dumps(job.metadata),
                "policy": job.missed_fire_policy, "now": self.now(),
            },
        )
        return None

    def list_cron_jobs(self) -> Op:
        res = yield Query(self.q("cron_list"), {})
        return CronJob.from_rows(res.names, res.rows)

    def delete_cron_job(self, name: str) -> Op:
        res = yield Query(self.q("cron_delete"), {"name": check_name(name, "cron job name")})
        return bool(res.rows)

    def pause_cron_job(self, name: str, paused: bool, paused_by: str | None = None) -> Op:
        """True when the schedule exists (pausing a paused one keeps its first pause)."""
        res = yield Query(
            self.q("cron_pause"),
            {"name": check_name(name, "cron job name"), "paused": paused, "by": paused_by, "now": self.now()},
        )
        return bool(res.rows)

    def fire_cron_job(self, name: str, fire_at: dt.datetime) -> Op:
        """Enqueue the job of tick ``fire_at``; the Job, or None when the tick
        was fired already, the schedule is paused or gone."""
        res = yield Query(
            self.q("cron_fire"), {"name": name, "fire_at": fire_at, "now": self.now(), "channel": self.channel}
        )
        jobs: list[Job] = jobs_of(res)
        return jobs[0] if jobs else None
