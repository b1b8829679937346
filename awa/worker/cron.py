"""The cron scheduler of the worker runtime: schedule math and the fire loop.

Every runtime with periodic jobs runs one :class:`CronScheduler`. It needs no
leadership: each pass it reads the schedules, works out the due ticks on its
own clock and calls ``cron_fire`` for each, which enqueues a tick's job and
records the tick in one transaction keyed by (name, tick). A second runtime,
a restarted one or one whose clock is behind finds the record and enqueues
nothing (``specs/Cron.tla``).

Missed fires (after downtime, a pause, or a slow pass): ``coalesce`` (the
default, as awa) fires only the latest due tick and skips the older ones;
``catch_up`` fires every missed tick in order, at most
:data:`CATCH_UP_LIMIT` per schedule per pass. A new schedule's first tick is
the first one after it was registered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from awa.errors import ValidationError
from awa.storage.cron_ops import MISSED_FIRE_POLICIES, CronJob, PeriodicJob
from awa.storage.validate import check_max_attempts, check_metadata, check_name, check_priority, check_tags

log = logging.getLogger("awa.worker.cron")

CATCH_UP_LIMIT = 100
DEFAULT_INTERVAL = 1.0  # seconds between passes


def zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"invalid timezone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"invalid timezone: {name!r} ({exc})") from None


def check_cron_expr(expr: str) -> str:
    if not isinstance(expr, str):
        raise ValidationError(f"invalid cron expression: {expr!r}")
    try:
        CronSim(expr, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    except CronSimError as exc:
        raise ValidationError(f"invalid cron expression: {expr!r} ({exc})") from None
    return expr


def periodic_job(
    name: str,
    cron_expr: str,
    kind: str,
    args: dict[str, Any],
    *,
    timezone: str = "UTC",
    queue: str = "default",
    priority: int = 2,
    max_attempts: int = 25,
    tags: Any = None,
    metadata: Any = None,
    missed_fire_policy: str = "coalesce",
) -> PeriodicJob:
    """A validated :class:`PeriodicJob` (bad input raises ValidationError, as awa: at registration)."""
    if missed_fire_policy not in MISSED_FIRE_POLICIES:
        raise ValidationError(f"invalid cron missed fire policy '{missed_fire_policy}'")
    zone(timezone)
    return PeriodicJob(
        name=check_name(name, "cron job name"),
        cron_expr=check_cron_expr(cron_expr),
        timezone=timezone,
        kind=check_name(kind, "kind"),
        queue=check_name(queue, "queue"),
        args=args,
        priority=check_priority(priority),
        max_attempts=check_max_attempts(max_attempts),
        tags=tuple(check_tags(tags)),
        metadata=check_metadata(metadata),
        missed_fire_policy=missed_fire_policy,
    )


def due_ticks(
    cron_expr: str, timezone: str, after: dt.datetime, now: dt.datetime, policy: str, limit: int = CATCH_UP_LIMIT
) -> list[dt.datetime]:
    """The ticks in ``(after, now]`` to fire, in UTC: the latest only
    (coalesce) or the first ``limit`` in order (catch_up)."""
    tz = zone(timezone)
    if now <= after:
        return []
    if policy == "coalesce":
        latest = next(CronSim(cron_expr, now.astimezone(tz) + dt.timedelta(microseconds=1), reverse=True), None)
        if latest is None:
            return []
        latest = latest.astimezone(dt.timezone.utc)
        return [latest] if after < latest <= now else []
    out = []
    for tick in CronSim(cron_expr, after.astimezone(tz)):
        tick = tick.astimezone(dt.timezone.utc)
        if tick > now or len(out) >= limit:
            break
        out.append(tick)
    return out


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class CronScheduler:
    """Fires the due ticks of every schedule in the database.

    ``run(store_run)`` works on any coroutine runner of storage operations
    (the worker's :class:`~awa.worker.store.WorkerStore` executor); ``clock``
    is this scheduler's own clock (tests skew and step it).
    """

    def __init__(
        self,
        core: Any,
        runner: Callable[[Any], Any],
        periodic: Iterable[PeriodicJob] = (),
        *,
        clock: Callable[[], dt.datetime] | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.core = core
        self.runner = runner
        self.periodic = list(periodic)
        self.clock = clock or core.clock or system_clock
        self.interval = interval
        self.fired = 0

    async def sync(self) -> None:
        """Upsert this runtime's definitions (additive: never deletes others')."""
        for job in self.periodic:
            await self.runner(self.core.upsert_cron_job(job))

    async def run_once(self) -> list[Any]:
        """One pass: the jobs this scheduler enqueued."""
        now = self.clock()
        enqueued = []
        for cron in await self.runner(self.core.list_cron_jobs()):
            if cron.is_paused:
                continue
            enqueued.extend(await self.fire_due(cron, now))
        return enqueued

    async def fire_due(self, cron: CronJob, now: dt.datetime) -> list[Any]:
        after = cron.last_enqueued_at or cron.created_at
        out = []
        for tick in due_ticks(cron.cron_expr, cron.timezone, after, now, cron.missed_fire_policy):
            job = await self.runner(self.core.fire_cron_job(cron.name, tick))
            if job is not None:
                out.append(job)
                self.fired += 1
        return out

    async def run(self, stop: asyncio.Event) -> None:
        await self.sync()
        while not stop.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is retried on the next one
                log.warning("cron pass failed", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
