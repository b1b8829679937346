"""A state machine for periodic jobs: several scheduler processes on PostgreSQL
with controllable, skewed clocks (the implementation twin of specs/Cron.tla).

Each scheduler is a thread with its own connection pool and event loop and
its own clock (real time plus a skew). Rules move real time on, change a
scheduler's skew, run a pass of several schedulers at once, crash a
scheduler in the middle of a fire (the transaction rolls back), let a runtime
with a stale view fire a tick already enqueued, and pause or resume a
schedule. Two schedules tick every minute: ``cu`` (catch_up) and ``co``
(coalesce).

Invariants after every step:
* NoTickFiredTwice: one job per (schedule, tick), and one record per job;
* EveryDueTickFired (catch_up): the ticks fired are exactly every minute up
  to the furthest clock of a pass that ran while the schedule was active;
* coalesce: the last tick enqueued is the latest minute of that horizon.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from awa.client import AsyncClient
from awa.worker.cron import CronScheduler, periodic_job
from tests.machines._support import bind_machine, reset_database, run_op, user_tables

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
SCHEDULERS = 3
MINUTE = dt.timedelta(minutes=1)


def floor_minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


class CronMachine(RuleBasedStateMachine):
    database_url: str
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection

    @initialize()
    def reset(self) -> None:
        reset_database(self.check_conn, user_tables(self.check_conn))
        for name, policy in (("cu", "catch_up"), ("co", "coalesce")):
            job = periodic_job(name, "* * * * *", "tick", {}, missed_fire_policy=policy)
            run_op(self.database_url, lambda core, job=job: core.upsert_cron_job(job))
        self.check_conn.execute("UPDATE awa.cron_jobs SET created_at = %s", (T0,))
        self.now = T0
        self.skew = [dt.timedelta(0)] * SCHEDULERS
        self.paused: set[str] = set()
        self.horizon = {"cu": T0, "co": T0}

    @rule(seconds=st.integers(0, 150))
    def advance(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    @rule(s=st.integers(0, SCHEDULERS - 1), seconds=st.integers(-45, 45))
    def set_skew(self, s: int, seconds: int) -> None:
        self.skew[s] = dt.timedelta(seconds=seconds)

    @rule(which=st.sets(st.integers(0, SCHEDULERS - 1), min_size=1))
    def run_pass(self, which: set[int]) -> None:
        clocks = [self.now + self.skew[s] for s in sorted(which)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(clocks))

        def scheduler(clock: dt.datetime) -> None:
            async def go() -> None:
                async with AsyncClient(self.database_url) as c:
                    sched = CronScheduler(c.core, c.executor.run, clock=lambda: clock)
                    await c.executor.open()
                    barrier.wait()
                    await sched.run_once()

            try:
                asyncio.run(go())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=scheduler, args=(c,)) for c in clocks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for name in ("cu", "co"):
            if name not in self.paused:
                self.horizon[name] = max(self.horizon[name], max(clocks))

    @rule(name=st.sampled_from(["cu", "co"]))
    def crash_mid_fire(self, name: str) -> None:
        """A scheduler dies inside cron_fire: its transaction never commits."""
        nxt = floor_minute(self.horizon[name]) + MINUTE
        with psycopg.connect(self.database_url) as conn:
            conn.execute("SELECT * FROM awa.cron_fire(%s, %s, NULL, 'awa_jobs')", (name, nxt))
            conn.rollback()

    @rule(s=st.integers(0, SCHEDULERS - 1), name=st.sampled_from(["cu", "co"]), back=st.integers(0, 2))
    def stale_fire(self, s: int, name: str, back: int) -> None:
        """Scheduler ``s`` runs a pass; then a runtime whose pass read the
        schedule before that one fired fires the last tick enqueued, or one
        before it. cron_fire must refuse (a coalesced tick that was skipped
        stays skipped)."""
        self.run_pass({s})
        last = self.check_conn.execute(
            "SELECT last_enqueued_at FROM awa.cron_jobs WHERE name = %s", (name,)).fetchone()[0]
        if last is None or last - back * MINUTE <= T0:
            return
        job = run_op(self.database_url, lambda core: core.fire_cron_job(name, last - back * MINUTE))
        assert job is None, f"NoTickFiredTwice: {name} fired {last - back * MINUTE} again"

    @precondition(lambda self: len(self.paused) < 2)
    @rule(name=st.sampled_from(["cu", "co"]))
    def pause(self, name: str) -> None:
        self.check_conn.execute("UPDATE awa.cron_jobs SET paused_at = now() WHERE name = %s", (name,))
        self.paused.add(name)

    @precondition(lambda self: bool(self.paused))
    @rule(name=st.sampled_from(["cu", "co"]))
    def resume(self, name: str) -> None:
        self.check_conn.execute("UPDATE awa.cron_jobs SET paused_at = NULL WHERE name = %s", (name,))
        self.paused.discard(name)

    # -- invariants --------------------------------------------------------

    def _fired(self, name: str) -> list[dt.datetime]:
        return [r[0] for r in self.check_conn.execute(
            "SELECT (metadata->>'cron_fire_at')::timestamptz FROM awa.jobs WHERE metadata->>'cron_name' = %s "
            "ORDER BY 1", (name,)).fetchall()]

    @invariant()
    def no_tick_fired_twice(self) -> None:
        for name in ("cu", "co"):
            fired = self._fired(name)
            assert len(fired) == len(set(fired)), f"NoTickFiredTwice: {name} {fired}"
            records = self.check_conn.execute(
                "SELECT count(*) FROM awa.cron_fires f JOIN awa.jobs j ON j.id = f.job_id WHERE f.name = %s",
                (name,)).fetchone()[0]
            assert records == len(fired)

    @invariant()
    def every_due_tick_fired(self) -> None:
        fired = self._fired("cu")
        last = floor_minute(self.horizon["cu"])
        expected = []
        t = T0 + MINUTE
        while t <= last:
            expected.append(t)
            t += MINUTE
        assert fired == expected, f"EveryDueTickFired: fired {fired}, expected up to {last}"

    @invariant()
    def coalesce_keeps_the_latest(self) -> None:
        row = self.check_conn.execute("SELECT last_enqueued_at FROM awa.cron_jobs WHERE name = 'co'").fetchone()
        last = floor_minute(self.horizon["co"])
        assert row[0] == (last if last > T0 else None), (row[0], last)


def cron_machine_class(database_url: str) -> type:
    return bind_machine(CronMachine, database_url)
