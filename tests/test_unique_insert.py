"""Unique jobs on real PostgreSQL: duplicates refused with nothing written (single
inserts, COPY batches, across partitions), keys freed when a job leaves its
unique states, cancel by key, and concurrent producers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import psycopg
import pytest

from awa.client import AsyncClient, Client, JobState
from awa.errors import UniqueConflict, ValidationError
from awa.routing import PartitionedQueue
from awa.storage.unique import compute_unique_key


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


@dataclass
class SendEmail:
    to: str
    subject: str


def _count(conn: psycopg.Connection, where: str = "true") -> int:
    conn.rollback()
    return conn.execute(f"SELECT count(*) FROM awa.jobs WHERE {where}").fetchone()[0]


def test_duplicate_insert_raises_and_writes_nothing(client, conn):
    job = client.insert(SendEmail("bob@example.com", "Hi"), queue="mail", unique_opts={"by_args": True})
    assert job.state is JobState.AVAILABLE
    with pytest.raises(UniqueConflict) as info:
        client.insert(SendEmail("bob@example.com", "Hi"), queue="mail", unique_opts={"by_args": True})
    assert str(info.value) == "unique conflict (idx_awa_jobs_unique)"
    assert info.value.constraint == "idx_awa_jobs_unique"
    assert _count(conn) == 1
    # the stored key is awa's key of the same parts
    stored = conn.execute("SELECT unique_key, unique_states::text FROM awa.jobs").fetchone()
    assert bytes(stored[0]) == compute_unique_key("send_email", None, {"to": "bob@example.com", "subject": "Hi"})
    assert stored[1] == "11111000"
    # other args, or no unique_opts: not a duplicate
    client.insert(SendEmail("eve@example.com", "Hi"), queue="mail", unique_opts={"by_args": True})
    client.insert(SendEmail("bob@example.com", "Hi"), queue="mail")
    assert _count(conn) == 3


def test_by_queue_and_by_period(client, conn):
    opts = {"by_queue": True}
    client.insert({"n": 1}, kind="sync", queue="q1", unique_opts=opts)
    client.insert({"n": 1}, kind="sync", queue="q2", unique_opts=opts)
    with pytest.raises(UniqueConflict):
        client.insert({"n": 1}, kind="sync", queue="q1", unique_opts=opts)
    # without by_queue the key spans queues
    client.insert({"n": 2}, kind="sync", queue="q1", unique_opts={})
    with pytest.raises(UniqueConflict):
        client.insert({"n": 2}, kind="sync", queue="q9", unique_opts={})
    client.insert({"n": 3}, kind="sync", unique_opts={"by_period": 1000})
    client.insert({"n": 3}, kind="sync", unique_opts={"by_period": 1001})
    with pytest.raises(UniqueConflict):
        client.insert({"n": 3}, kind="sync", unique_opts={"by_period": 1001})
    # by_args=False: one job per kind
    client.insert({"n": 4}, kind="report", unique_opts={"by_args": False})
    with pytest.raises(UniqueConflict):
        client.insert({"n": 5}, kind="report", unique_opts={"by_args": False})
    assert _count(conn) == 6


@pytest.mark.parametrize("method", ["insert_many_copy", "enqueue_many_copy"])
def test_copy_batch_with_a_held_key_is_rejected_whole(client, conn, method):
    client.insert({"n": 2}, kind="k", unique_opts={})
    jobs = [{"n": i} for i in range(50)]
    with pytest.raises(UniqueConflict):
        getattr(client, method)(jobs, kind="k", unique_opts={})
    assert _count(conn) == 1
    # a key twice inside one batch: also the whole batch
    with pytest.raises(UniqueConflict):
        getattr(client, method)([{"n": 100}, {"n": 101}, {"n": 100}], kind="k", unique_opts={})
    assert _count(conn) == 1
    getattr(client, method)([{"n": 100}, {"n": 101}], kind="k", unique_opts={})
    assert _count(conn) == 3


def test_per_job_unique_opts_in_a_batch(client, conn):
    jobs = client.insert_many_copy(
        [{"n": 1}, {"n": 1}, {"n": 1}],
        kind="k",
        opts=[{"queue": "a", "unique_opts": {"by_queue": True}}, {"queue": "b", "unique_opts": {"by_queue": True}}, None],
    )
    assert [j.queue for j in jobs] == ["a", "b", "default"]
    assert _count(conn, "unique_key IS NOT NULL") == 2
    with pytest.raises(UniqueConflict):
        client.insert_many_copy([{"n": 1}], kind="k", opts=[{"queue": "b", "unique_opts": {"by_queue": True}}])
    assert _count(conn) == 3


def test_unique_across_partitions_of_a_partitioned_queue(client, conn):
    orders = PartitionedQueue("orders", 4)
    # the same args routed by different keys land on different partitions: still one job
    routes = [orders.route_by_key(f"customer-{i}") for i in range(8)]
    assert len({r["queue"] for r in routes}) > 1
    client.insert({"order": 7}, kind="charge", unique_opts={}, **routes[0])
    for route in routes[1:]:
        with pytest.raises(UniqueConflict):
            client.insert({"order": 7}, kind="charge", unique_opts={}, **route)
    with pytest.raises(UniqueConflict):
        client.insert_many_copy(
            [{"order": 8}, {"order": 7}], kind="charge", unique_opts={}, opts=[r for r in routes[2:4]]
        )
    assert _count(conn) == 1


def test_key_is_freed_when_the_job_leaves_its_states(client, conn):
    # completed not among the states: completing frees the key
    opts = {"states": 0b0001_0111}
    first = client.insert({"n": 1}, kind="k", unique_opts=opts)
    [claimed] = client.claim("default", 1)
    assert claimed.id == first.id
    with pytest.raises(UniqueConflict):  # running holds it
        client.insert({"n": 1}, kind="k", unique_opts=opts)
    assert client.complete(claimed.id, claimed.run_lease)
    second = client.insert({"n": 1}, kind="k", unique_opts=opts)
    # the default states keep completed jobs: retention pruning frees the key
    client.cancel_job(second.id)
    done = client.insert({"n": 2}, kind="k", unique_opts={})
    [c] = client.claim("default", 1)
    client.complete(c.id, c.run_lease)
    assert c.id == done.id
    with pytest.raises(UniqueConflict):
        client.insert({"n": 2}, kind="k", unique_opts={})
    conn.execute("UPDATE awa.jobs SET finalized_at = now() - interval '2 hours' WHERE id = %s", (done.id,))
    conn.commit()
    assert client.prune_jobs(completed_retention_hours=1) >= 1
    client.insert({"n": 2}, kind="k", unique_opts={})


def test_retry_of_a_failed_job_conflicts_with_a_newer_holder(client, conn):
    old = client.insert({"n": 1}, kind="k", unique_opts={})
    [c] = client.claim("default", 1)
    client.fail(c.id, c.run_lease, "boom")
    newer = client.insert({"n": 1}, kind="k", unique_opts={})  # failed is not a unique state
    with pytest.raises(UniqueConflict):
        client.retry_job(old.id)
    assert client.get_job(old.id).state is JobState.FAILED
    client.cancel_job(newer.id)
    assert client.retry_job(old.id).state is JobState.AVAILABLE


def test_cancel_by_unique_key(client, conn):
    job = client.insert(SendEmail("a@b.c", "x"), queue="mail", unique_opts={"by_queue": True, "by_period": 5})
    assert client.cancel_by_unique_key("send_email", args={"to": "a@b.c", "subject": "x"}, period_bucket=5) is None
    got = client.cancel_by_unique_key("send_email", queue="mail", args={"to": "a@b.c", "subject": "x"}, period_bucket=5)
    assert got.id == job.id and got.state is JobState.CANCELLED
    assert client.cancel_by_unique_key("send_email", queue="mail", args={"to": "a@b.c", "subject": "x"}, period_bucket=5) is None
    client.insert(SendEmail("a@b.c", "x"), queue="mail", unique_opts={"by_queue": True, "by_period": 5})
    with pytest.raises(ValidationError, match="period_bucket must be a 64-bit integer"):
        client.cancel_by_unique_key("send_email", period_bucket="5")


def test_invalid_unique_opts_write_nothing(client, conn):
    with pytest.raises(ValidationError, match="^unique_opts must be a dict$"):
        client.insert({"n": 1}, kind="k", unique_opts=[1])
    with pytest.raises(ValidationError, match=r"^opts\[0\] unique_opts by_args must be a bool"):
        client.insert_many_copy([{"n": 1}], kind="k", opts=[{"unique_opts": {"by_args": 1}}])
    assert _count(conn) == 0


def test_transactional_insert_rolls_back_its_key(client, database_url):
    with psycopg.connect(database_url) as own:
        client.insert({"n": 1}, kind="k", unique_opts={}, conn=own)
        own.rollback()
    client.insert({"n": 1}, kind="k", unique_opts={})
    with psycopg.connect(database_url) as own:
        with pytest.raises(UniqueConflict):
            client.insert({"n": 1}, kind="k", unique_opts={}, conn=own)
        own.rollback()


def test_async_client(database_url):
    async def main():
        async with AsyncClient(database_url) as c:
            await c.insert({"n": 1}, kind="k", unique_opts={})
            with pytest.raises(UniqueConflict):
                await c.insert({"n": 1}, kind="k", unique_opts={})
            with pytest.raises(UniqueConflict):
                await c.enqueue_many_copy([{"n": 1}], kind="k", unique_opts={})
            job = await c.cancel_by_unique_key("k", args={"n": 1})
            assert job.state is JobState.CANCELLED

    asyncio.run(main())


def test_concurrent_producers_leave_one_live_job_per_key(database_url, conn):
    """8 threads insert the same 20 keys (single inserts and batches): every key
    ends with exactly one job, and every other attempt raised UniqueConflict."""
    keys = 20
    outcomes: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def produce(worker: int) -> None:
        with Client(database_url) as c:
            start.wait()
            for n in range(keys):
                n = (n + worker * 3) % keys
                try:
                    if worker % 2:
                        c.insert({"n": n}, kind="k", unique_opts={})
                    else:
                        c.enqueue_many_copy([{"n": n}], kind="k", unique_opts={})
                    result = "ok"
                except UniqueConflict:
                    result = "conflict"
                with lock:
                    outcomes.append((result, n))

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r, _ in outcomes if r == "ok") == keys
    assert sum(1 for r, _ in outcomes if r == "conflict") == 7 * keys
    rows = conn.execute("SELECT args->>'n', count(*) FROM awa.jobs GROUP BY 1").fetchall()
    assert sorted(int(n) for n, _ in rows) == list(range(keys)) and {c for _, c in rows} == {1}


def test_a_dead_lettered_job_keeps_its_key_when_retried(client, conn):
    client.set_queue_dlq("default", True)
    old = client.insert({"n": 1}, kind="k", unique_opts={})
    [c] = client.claim("default", 1)
    client.fail(c.id, c.run_lease, "boom")  # dead-lettered: the key is free
    newer = client.insert({"n": 1}, kind="k", unique_opts={})
    with pytest.raises(UniqueConflict):
        client.retry_from_dlq(old.id)
    assert client.get_dlq_job(old.id) is not None  # still dead-lettered, nothing moved
    client.cancel_job(newer.id)
    assert client.retry_from_dlq(old.id).id == old.id
    with pytest.raises(UniqueConflict):  # back with its key
        client.insert({"n": 1}, kind="k", unique_opts={})
