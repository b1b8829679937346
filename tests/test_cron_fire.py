"""Periodic jobs on real PostgreSQL: registration, exactly one job per tick
across several schedulers (threads, skewed clocks, restarts), missed-fire
policies, pause/resume/delete, and the worker runtime firing a schedule."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import dataclass

import pytest

from awa.client import AsyncClient, Client
from awa.errors import ValidationError
from awa.worker.cron import CronScheduler, periodic_job
from tests.machines._support import run_op

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class DailyReport:
    format: str


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def _register(client, conn, name="every_minute", expr="* * * * *", policy="coalesce", created=T0):
    client.periodic(name, expr, DailyReport, DailyReport("pdf"), queue="reports", missed_fire_policy=policy)
    client.sync_cron_jobs()
    conn.execute("UPDATE awa.cron_jobs SET created_at = %s WHERE name = %s", (created, name))
    conn.commit()


def _scheduler_pass(database_url, clock_value: dt.datetime) -> list:
    async def go():
        async with AsyncClient(database_url) as c:
            sched = CronScheduler(c.core, c.executor.run, clock=lambda: clock_value)
            return await sched.run_once()

    return asyncio.run(go())


def test_periodic_registers_awa_pg_columns(client, conn):
    client.periodic(
        "test_daily_report", "0 9 * * *", DailyReport, DailyReport("pdf"), timezone="Pacific/Auckland",
        queue="periodic_reg", priority=1, max_attempts=3, tags=["sync"], metadata={"team": "p"},
        missed_fire_policy="catch_up",
    )
    assert client.list_cron_jobs() == []  # registered locally until a worker (or sync) writes it
    assert client.sync_cron_jobs() == 1
    [row] = client.list_cron_jobs()
    assert (row.name, row.cron_expr, row.timezone, row.kind, row.queue) == (
        "test_daily_report", "0 9 * * *", "Pacific/Auckland", "daily_report", "periodic_reg")
    assert (row.args, row.priority, row.max_attempts, row.tags, row.metadata, row.missed_fire_policy) == (
        {"format": "pdf"}, 1, 3, ["sync"], {"team": "p"}, "catch_up")
    assert row.last_enqueued_at is None and not row.is_paused


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.periodic("n", "bad", DailyReport, DailyReport("x")), "invalid cron expression: 'bad'"),
        (lambda c: c.periodic("n", "* * * * *", DailyReport, {"format": "x"}), "args must be an instance of DailyReport"),
        (lambda c: c.periodic("n", "* * * * *", "DailyReport", DailyReport("x")), "args_type must be a class"),
        (lambda c: c.periodic("n", "* * * * *", DailyReport, DailyReport("x"), timezone="Nowhere/Here"),
         "invalid timezone: 'Nowhere/Here'"),
    ],
)
def test_periodic_validation_texts(client, call, message):
    with pytest.raises(ValidationError) as info:
        call(client)
    assert str(info.value).startswith(message)
    assert client.periodic_jobs() == []


def test_one_job_per_tick_across_concurrent_schedulers_with_skewed_clocks(client, conn, database_url):
    """6 schedulers on threads, clocks skewed by up to 40 s, each stepping
    through 5 minutes: every tick is enqueued exactly once."""
    _register(client, conn, policy="catch_up")
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def scheduler(n: int) -> None:
        skew = dt.timedelta(seconds=(n - 3) * 13)
        start.wait()
        for minute in range(1, 6):
            jobs = _scheduler_pass(database_url, T0 + dt.timedelta(minutes=minute, seconds=5) + skew)
            with lock:
                results.append(len(jobs))

    threads = [threading.Thread(target=scheduler, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.rollback()
    fires = conn.execute("SELECT fire_at, count(*) FROM awa.jobs j JOIN awa.cron_fires f ON f.job_id = j.id "
                         "GROUP BY fire_at ORDER BY fire_at").fetchall()
    assert [f for f, _ in fires] == [T0 + dt.timedelta(minutes=m) for m in range(1, 6)]
    assert {n for _, n in fires} == {1}
    assert sum(results) == 5
    assert conn.execute("SELECT count(*) FROM awa.jobs WHERE metadata->>'cron_name' = 'every_minute'").fetchone()[0] == 5


def test_a_scheduler_behind_or_restarted_fires_nothing_again(client, conn, database_url):
    _register(client, conn)
    assert len(_scheduler_pass(database_url, T0 + dt.timedelta(minutes=3))) == 1  # coalesce: only 00:03
    assert _scheduler_pass(database_url, T0 + dt.timedelta(minutes=3)) == []  # restart, same clock
    assert _scheduler_pass(database_url, T0 + dt.timedelta(minutes=2, seconds=30)) == []  # a clock behind
    [job] = _scheduler_pass(database_url, T0 + dt.timedelta(minutes=4))
    assert job.kind == "daily_report" and job.queue == "reports" and job.args == {"format": "pdf"}
    assert job.metadata["cron_name"] == "every_minute"
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0] == 2


def test_missed_fire_policies_after_downtime(client, conn, database_url):
    _register(client, conn, name="co", policy="coalesce")
    _register(client, conn, name="cu", policy="catch_up")
    jobs = _scheduler_pass(database_url, T0 + dt.timedelta(minutes=10, seconds=1))
    by_name: dict[str, int] = {}
    for j in jobs:
        by_name[j.metadata["cron_name"]] = by_name.get(j.metadata["cron_name"], 0) + 1
    assert by_name == {"co": 1, "cu": 10}
    rows = {r.name: r.last_enqueued_at for r in client.list_cron_jobs()}
    assert rows == {"co": T0 + dt.timedelta(minutes=10), "cu": T0 + dt.timedelta(minutes=10)}


def test_pause_resume_delete(client, conn, database_url):
    _register(client, conn)
    assert client.pause_cron_job("every_minute", "ops") is True
    assert client.pause_cron_job("nope") is False
    [row] = client.list_cron_jobs()
    assert row.is_paused and row.paused_by == "ops"
    assert _scheduler_pass(database_url, T0 + dt.timedelta(minutes=5)) == []
    # a fire racing the pause is refused inside cron_fire as well
    assert client.core is not None
    assert run_op(database_url, lambda core: core.fire_cron_job("every_minute", T0 + dt.timedelta(minutes=5))) is None
    assert client.resume_cron_job("every_minute") is True
    assert len(_scheduler_pass(database_url, T0 + dt.timedelta(minutes=5))) == 1  # coalesce: one on resume
    assert client.delete_cron_job("every_minute") is True
    assert client.delete_cron_job("every_minute") is False
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM awa.cron_fires").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0] == 1  # fired jobs stay


def test_the_worker_runtime_fires_its_schedules(database_url, conn):
    with Client(database_url) as c:
        done = threading.Event()

        @c.task(DailyReport, queue="reports")
        def handle(job):
            done.set()

        c.periodic("runtime_tick", "* * * * *", DailyReport, DailyReport("csv"), queue="reports")
        c.sync_cron_jobs()
        conn.execute("UPDATE awa.cron_jobs SET created_at = now() - interval '61 seconds'")
        conn.commit()
        c.start([("reports", 1)])
        try:
            assert done.wait(15), "the runtime did not fire the due tick"
        finally:
            c.shutdown()
        time.sleep(0.1)
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM awa.cron_fires WHERE name = 'runtime_tick'").fetchone()[0] == 1
