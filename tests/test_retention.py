"""Retention on real PostgreSQL: pruning batches, per-queue retention, the DLQ,
rolled-up terminal counts that stay exact, and the leader pruning by itself."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from worker_support.helpers import T0, ManualClock
from awa.client import Client
from awa.errors import ValidationError
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run, states, wait_until



@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def client(database_url, clock):
    with Client(database_url, clock=clock, jitter=lambda: 0.0) as c:
        yield c


def _finish(client, queue, n, how):
    """n jobs on ``queue`` ended with ``how`` (complete / fail / cancel); their ids."""
    jobs = client.insert_many_copy([{"i": i} for i in range(n)], kind="k", queue=queue)
    claimed = client.claim(queue, n)
    assert len(claimed) == n
    for job in claimed:
        if how == "complete":
            assert client.complete(job.id, job.run_lease)
        elif how == "fail":
            assert client.fail(job.id, job.run_lease, "ValueError: no")
        else:
            assert client.cancel(job.id, job.run_lease)
    return [j.id for j in jobs]


def _counts(client, queue):
    [stat] = [s for s in client.queue_stats() if s.queue == queue]
    return stat.completed, stat.failed, stat.cancelled


def test_completed_go_after_their_retention_failed_and_cancelled_after_theirs(client, clock, database_url):
    _finish(client, "q", 3, "complete")
    _finish(client, "q", 2, "fail")
    _finish(client, "q", 1, "cancel")
    clock.advance(hours=25)  # past 24 h, not past 72 h
    assert client.prune_jobs() == 3
    assert states(database_url) == {"failed": 2, "cancelled": 1}
    clock.advance(hours=48)  # 73 h
    assert client.prune_jobs() == 3
    assert states(database_url) == {}


def test_unfinished_jobs_are_never_pruned(client, clock, database_url):
    client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="q")
    client.insert({"later": True}, kind="k", queue="q", run_at=T0 + dt.timedelta(days=30))
    [running] = client.claim("q", 1)
    [retrying] = client.claim("q", 1)
    client.retry(retrying.id, retrying.run_lease, after_seconds=10**6, error="x")
    clock.advance(hours=10_000)
    assert client.prune_jobs(completed_retention_hours=0, failed_retention_hours=0) == 0
    assert states(database_url) == {"available": 1, "running": 1, "retryable": 1, "scheduled": 1}


def test_a_batch_deletes_at_most_its_limit_oldest_first(client, clock, database_url):
    ids = _finish(client, "q", 5, "complete")
    clock.advance(hours=1)
    _finish(client, "q", 5, "complete")
    clock.advance(hours=30)
    assert client.prune_jobs(limit=4) == 4
    with psycopg.connect(database_url) as conn:
        left = {r[0] for r in conn.execute("SELECT id FROM awa.jobs").fetchall()}
    assert not left & set(ids[:4])  # the oldest went first
    assert client.prune_jobs(limit=4) == 4
    assert client.prune_jobs(limit=4) == 2
    assert client.prune_jobs(limit=4) == 0


def test_per_queue_retention_overrides_the_default(client, clock, database_url):
    _finish(client, "keep", 2, "complete")
    _finish(client, "short", 2, "complete")
    _finish(client, "default", 2, "complete")
    clock.advance(hours=2)
    overrides = {"keep": {"completed_hours": 48}, "short": {"completed_hours": 1}}
    assert client.prune_jobs(queue_retention=overrides) == 2  # only "short" (2 h > 1 h)
    clock.advance(hours=23)
    assert client.prune_jobs(queue_retention=overrides) == 2  # "default" at 25 h
    assert {s.queue: s.completed for s in client.queue_stats()} == {"default": 0, "keep": 2, "short": 0}


def test_dead_letter_entries_keep_their_own_retention(client, clock):
    client.set_queue_dlq("d")
    client.insert({"x": 1}, kind="k", queue="d", max_attempts=1)
    [job] = client.claim("d", 1)
    client.retry(job.id, job.run_lease, error="boom")  # out of attempts: dead-lettered
    assert client.dlq_depth() == 1
    clock.advance(hours=100)
    assert client.prune_jobs(completed_retention_hours=0, failed_retention_hours=0) == 0
    assert client.prune_dlq() == 0  # 30 days by default
    clock.advance(hours=30 * 24)
    assert client.prune_dlq() == 1
    assert client.dlq_depth() == 0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1", True])
def test_bad_retention_is_refused_and_nothing_is_deleted(client, clock, database_url, bad):
    _finish(client, "q", 2, "complete")
    clock.advance(hours=1000)
    with pytest.raises(ValidationError):
        client.prune_jobs(completed_retention_hours=bad)
    with pytest.raises(ValidationError):
        client.prune_jobs(queue_retention={"q": {"failed_hours": bad}})
    assert states(database_url) == {"completed": 2}


def test_rolled_up_counts_stay_exact_through_every_way_out(client, clock, database_url):
    _finish(client, "q", 6, "complete")
    failed = _finish(client, "q", 4, "fail")
    cancelled = _finish(client, "q", 2, "cancel")
    assert _counts(client, "q") == (6, 4, 2)
    assert client.rollup_terminal_counts(lag_seconds=0) == 0  # creates the count rows
    with psycopg.connect(database_url) as conn:  # the clock says 2030: move the watermark past it
        conn.execute("UPDATE awa.jobs SET finalized_at = now() - interval '1 hour' WHERE finalized_at IS NOT NULL")
    assert client.rollup_terminal_counts(lag_seconds=0) == 12
    assert _counts(client, "q") == (6, 4, 2)
    with psycopg.connect(database_url) as conn:
        rolled = dict(conn.execute("SELECT state::text, n FROM awa.terminal_counts WHERE queue = 'q'").fetchall())
    assert rolled == {"completed": 6, "failed": 4, "cancelled": 2}  # served from the roll-up now

    assert client.retry_job(failed[0]) is not None  # failed -> available
    assert client.retry_job(cancelled[0]) is not None
    assert client.move_failed_to_dlq(failed[1])  # failed -> dead-letter table
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM awa.jobs WHERE id = %s", [failed[2]])  # by hand
    assert _counts(client, "q") == (6, 1, 1)
    with psycopg.connect(database_url) as conn:
        stored = dict(conn.execute(
            "SELECT state::text, count(*) FROM awa.jobs WHERE state IN ('completed', 'failed', 'cancelled') "
            "GROUP BY 1").fetchall())
    assert stored == {"completed": 6, "failed": 1, "cancelled": 1}
    # Pruning corrects the counts in bulk (the trigger stays out of it).
    clock.advance(hours=10**5)
    assert client.prune_jobs(completed_retention_hours=0, failed_retention_hours=0) == 8
    assert _counts(client, "q") == (0, 0, 0)
    # Jobs finished after the roll-up are counted live.
    _finish(client, "q", 3, "complete")
    assert _counts(client, "q") == (3, 0, 0)


def test_the_leader_prunes_by_itself_with_awa_pg_option_names(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)

        @client.task(Ping, queue="fast")
        async def ping(job):
            return None

        @client.task(Ping, kind="ping_kept", queue="kept")
        async def kept(job):
            return None

        await client.insert_many_copy([Ping(i) for i in range(20)], queue="fast")
        await client.insert_many_copy([Ping(i) for i in range(5)], kind="ping_kept", queue="kept")
        await client.start(
            [{"name": "fast", "max_workers": 4},
             {"name": "kept", "max_workers": 2, "retention": {"completed_hours": 1}}],
            completed_retention_hours=0, failed_retention_hours=0, cleanup_interval_ms=100,
            terminal_count_rollup_interval_ms=100, cleanup_batch_size=7, **FAST,
        )
        try:
            async def pruned():
                stats = {s.queue: s for s in await client.queue_stats()}
                return stats["fast"].completed == 0 and stats["kept"].completed == 5 and \
                    client.worker_runtime.retention.deleted["completed"] == 20
            await wait_until(pruned, timeout=20)
        finally:
            await client.shutdown()
            await client.close()

    run(main())
    assert states(database_url) == {"completed": 5}


@pytest.mark.parametrize("options", [
    {"completed_retention_hours": -1}, {"failed_retention_hours": float("inf")}, {"dlq_retention_hours": "x"},
    {"cleanup_batch_size": 0}, {"cleanup_interval_ms": -5}, {"terminal_count_rollup_interval_ms": 1.5},
])
def test_start_refuses_bad_retention_options(database_url, options):
    with Client(database_url) as client:
        client.task(Ping, queue="q")(lambda job: None)
        with pytest.raises(ValidationError):
            client.start([("q", 1)], **options)
        assert client.worker_runtime is None


def test_start_refuses_a_bad_per_queue_retention(database_url):
    with Client(database_url) as client:
        client.task(Ping, queue="q")(lambda job: None)
        for retention in ({"completed_hours": -1}, {"kept_hours": 1}, "24h"):
            with pytest.raises(ValidationError):
                client.start([{"name": "q", "max_workers": 1, "retention": retention}])
