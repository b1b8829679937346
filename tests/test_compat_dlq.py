"""awa-pg's dead-letter API on real PostgreSQL: move_failed_to_dlq's
DlqEntry, list_dlq's filters and cursor, and the bulk calls."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest

import awa
from awa.client import AsyncClient, Client
from awa.errors import UniqueConflict, ValidationError
from worker_support.helpers import T0, ManualClock


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def client(database_url, clock):
    with Client(database_url, clock=clock) as c:
        yield c


def _failed(client, n: int, *, kind: str = "k", queue: str = "q", tags=None) -> list[int]:
    client.insert_many_copy([{"i": i} for i in range(n)], kind=kind, queue=queue, max_attempts=1, tags=tags)
    ids = []
    for job in client.claim(queue, n):
        assert client.fail(job.id, job.run_lease, "boom")
        ids.append(job.id)
    return sorted(ids)


def _dead(client, clock, n: int, **kwargs) -> list[int]:
    """``n`` dead-lettered jobs, one second apart in dlq_at."""
    ids = _failed(client, n, **kwargs)
    for job_id in ids:
        clock.advance(1)
        assert client.move_failed_to_dlq(job_id, "test") is not None
    return ids


def _snapshot(database_url):
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute("SELECT id, state::text FROM awa.jobs ORDER BY id").fetchall()
        dlq = conn.execute("SELECT id, reason FROM awa.dlq_entries ORDER BY id").fetchall()
    return jobs, dlq


def test_move_failed_to_dlq_returns_the_entry_or_none(client, clock):
    [job_id] = _failed(client, 1)
    lease = client.get_job(job_id).run_lease
    clock.advance(5)
    entry = client.move_failed_to_dlq(job_id, "operator")
    assert isinstance(entry, awa.DlqEntry)
    assert (entry.job.id, entry.job.kind, entry.reason, entry.original_run_lease) == (job_id, "k", "operator", lease)
    assert entry.dlq_at == T0 + dt.timedelta(seconds=5) and entry.job.state == awa.JobState.Failed
    assert client.move_failed_to_dlq(job_id, "again") is None  # gone from jobs
    assert client.move_failed_to_dlq(10**12, "missing") is None
    live = client.insert({"n": 1}, kind="k", queue="q")
    assert client.move_failed_to_dlq(live.id) is None  # not failed: untouched
    assert client.get_job(live.id).state == awa.JobState.Available


def test_list_dlq_filters_by_kind_queue_and_tag(client, clock):
    a = _dead(client, clock, 2, kind="a", queue="q1", tags=["red"])
    b = _dead(client, clock, 2, kind="b", queue="q1", tags=["blue", "red"])
    c = _dead(client, clock, 1, kind="a", queue="q2")
    ids = lambda entries: [e.job.id for e in entries]  # noqa: E731
    assert ids(client.list_dlq()) == (a + b + c)[::-1]  # newest first
    assert ids(client.list_dlq(kind="a")) == (a + c)[::-1]
    assert ids(client.list_dlq(queue="q1")) == (a + b)[::-1]
    assert ids(client.list_dlq(tag="red")) == (a + b)[::-1]
    assert ids(client.list_dlq(tag="blue", kind="b", queue="q1")) == b[::-1]
    assert client.list_dlq(tag="green") == [] and client.list_dlq(kind="a", queue="nowhere") == []
    assert ids(client.list_dlq(limit=2)) == c[::-1] + b[-1:]


def test_list_dlq_pages_with_awa_pg_cursor(client, clock):
    ids = _dead(client, clock, 5)
    seen, page = [], client.list_dlq(limit=2)
    while page:
        seen += [e.job.id for e in page]
        last = page[-1]
        page = client.list_dlq(limit=2, before_dlq_at=last.dlq_at, before_id=last.job.id)
    assert seen == ids[::-1]
    assert [e.job.id for e in client.list_dlq(before_id=ids[2])] == ids[:2][::-1]
    third = client.get_dlq_job(ids[2]).dlq_at
    assert [e.job.id for e in client.list_dlq(before_dlq_at=third)] == ids[:2][::-1]
    assert [e.job.id for e in client.list_dlq(before_dlq_at=third.isoformat())] == ids[:2][::-1]


def test_bulk_move_failed_to_dlq_by_kind_and_queue(client, database_url):
    a = _failed(client, 3, kind="a", queue="m1")
    b = _failed(client, 2, kind="b", queue="m1")
    c = _failed(client, 2, kind="a", queue="m2")
    live = client.insert({"n": 1}, kind="a", queue="m1")
    before = _snapshot(database_url)
    with pytest.raises(ValidationError, match=r"^bulk_move_failed_to_dlq requires at least one of kind or queue \(or allow_all=true\)$"):
        client.bulk_move_failed_to_dlq()
    assert _snapshot(database_url) == before
    assert client.bulk_move_failed_to_dlq(kind="a", queue="m1", reason="outage") == 3
    assert sorted(e.job.id for e in client.list_dlq()) == a
    assert {e.reason for e in client.list_dlq()} == {"outage"}
    assert client.bulk_move_failed_to_dlq(queue="m1") == 2  # b, default reason
    assert client.get_dlq_job(b[0]).reason == "manual"
    assert client.bulk_move_failed_to_dlq(kind="a", queue="m1") == 0
    assert client.bulk_move_failed_to_dlq(allow_all=True) == 2  # c
    assert client.dlq_depth() == 7 and client.dlq_depth(queue="m2") == 2
    assert client.get_job(live.id).state == awa.JobState.Available  # only failed jobs move
    assert client.list_jobs(state="failed") == [] and sorted(c) == sorted(e.job.id for e in client.list_dlq(queue="m2"))


def test_bulk_retry_from_dlq_by_filter(client, clock):
    a = _dead(client, clock, 3, kind="a", queue="r1", tags=["t"])
    b = _dead(client, clock, 2, kind="b", queue="r1")
    c = _dead(client, clock, 1, kind="a", queue="r2")
    with pytest.raises(ValidationError, match=r"^bulk_retry_from_dlq requires at least one of kind, queue, or tag \(or allow_all=true\)$"):
        client.bulk_retry_from_dlq()
    assert client.dlq_depth() == 6
    assert client.bulk_retry_from_dlq(tag="t") == 3
    for job_id in a:
        job = client.get_job(job_id)
        assert (job.state, job.attempt, job.queue) == (awa.JobState.Available, 0, "r1")
    assert client.bulk_retry_from_dlq(kind="a") == 1  # c
    assert client.bulk_retry_from_dlq(kind="a") == 0
    assert [j.id for j in client.claim("r1", 10)] == a  # back in their lane, in id order
    assert client.bulk_retry_from_dlq(allow_all=True) == 2 and client.dlq_depth() == 0
    assert sorted(j.id for j in client.list_jobs(state="available")) == sorted(b + c)


def test_bulk_retry_from_dlq_with_a_unique_conflict_retries_nothing(client, clock):
    opts = {"by_queue": True}
    old = client.insert({"n": 1}, kind="u", queue="uq", max_attempts=1, unique_opts=opts)
    [job] = client.claim("uq", 1)
    client.fail(job.id, job.run_lease, "boom")
    assert client.move_failed_to_dlq(old.id) is not None
    other = _dead(client, clock, 1, kind="u2", queue="uq")
    newer = client.insert({"n": 1}, kind="u", queue="uq", unique_opts=opts)  # the key is free again
    with pytest.raises(UniqueConflict):
        client.bulk_retry_from_dlq(queue="uq")
    assert sorted(e.job.id for e in client.list_dlq(queue="uq")) == sorted([old.id] + other)
    assert client.get_job(newer.id).state == awa.JobState.Available


def test_purge_dlq_by_filter_and_cursor(client, clock, database_url):
    a = _dead(client, clock, 4, kind="a", queue="p1", tags=["x"])
    b = _dead(client, clock, 2, kind="b", queue="p2")
    before = _snapshot(database_url)
    with pytest.raises(ValidationError, match=r"^purge_dlq requires at least one of kind, queue, or tag \(or allow_all=true\)$"):
        client.purge_dlq()
    with pytest.raises(ValidationError, match="purge_dlq requires"):
        client.purge_dlq(before_id=a[2])  # a cursor alone is not a scope
    assert _snapshot(database_url) == before
    assert client.purge_dlq(kind="a", before_id=a[2]) == 2
    assert sorted(e.job.id for e in client.list_dlq(kind="a")) == a[2:]
    cut = client.get_dlq_job(a[3]).dlq_at
    assert client.purge_dlq(tag="x", before_dlq_at=cut) == 1  # a[2]
    assert client.purge_dlq(queue="p1", before_dlq_at=cut, before_id=a[3]) == 0  # (dlq_at, id) < (cut, id): no
    assert client.purge_dlq(queue="p1", before_dlq_at=cut, before_id=a[3] + 1) == 1
    assert client.purge_dlq(allow_all=True) == 2 and client.dlq_depth() == 0
    assert all(client.find_job(i) is None for i in a + b)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.purge_dlq(kind="a", allow_all="yes"), "allow_all must be True or False"),
        (lambda c: c.bulk_retry_from_dlq(allow_all=1), "allow_all must be True or False"),
        (lambda c: c.bulk_move_failed_to_dlq(allow_all=None), "allow_all must be True or False"),
        (lambda c: c.purge_dlq(tag=1), "tag must be a string"),
        (lambda c: c.purge_dlq(tag="a\x00"), "tag must not contain NUL"),
        (lambda c: c.purge_dlq(kind=""), "kind must not be empty"),
        (lambda c: c.purge_dlq(queue="a b"), "queue"),
        (lambda c: c.purge_dlq(kind="a", before_id=2**64), "before_id must be an integer"),
        (lambda c: c.purge_dlq(kind="a", before_dlq_at=dt.datetime(2030, 1, 1)), "before_dlq_at must be timezone-aware"),
        (lambda c: c.purge_dlq(kind="a", before_dlq_at=5), "before_dlq_at must be a datetime"),
        (lambda c: c.bulk_retry_from_dlq(kind=5), "kind must be a string"),
        (lambda c: c.bulk_move_failed_to_dlq(kind="a", reason=None), "reason must be a string"),
        (lambda c: c.bulk_move_failed_to_dlq(queue="a\tb"), "queue"),
        (lambda c: c.list_dlq(tag=["x"]), "tag must be a string"),
        (lambda c: c.list_dlq(before_dlq_at="yesterday"), "before_dlq_at must be a datetime or RFC3339 string"),
        (lambda c: c.list_dlq(limit=0), "limit must be an integer between 1 and"),
    ],
)
def test_bad_input_changes_nothing(client, clock, database_url, call, message):
    _dead(client, clock, 2, kind="a", queue="bad", tags=["x"])
    _failed(client, 1, kind="a", queue="bad")
    before = _snapshot(database_url)
    with pytest.raises(ValidationError, match=message):
        call(client)
    assert _snapshot(database_url) == before


def test_the_async_client_has_the_same_calls(database_url):
    async def main():
        async with AsyncClient(database_url) as client:
            await client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="aq", max_attempts=1, tags=["t"])
            for job in await client.claim("aq", 3):
                await client.fail(job.id, job.run_lease, "boom")
            failed = sorted(j.id for j in await client.list_jobs(state="failed"))
            entry = await client.move_failed_to_dlq(failed[0], "one")
            assert isinstance(entry, awa.DlqEntry) and entry.reason == "one"
            assert await client.bulk_move_failed_to_dlq(queue="aq") == 2
            assert [e.job.id for e in await client.list_dlq(tag="t", queue="aq", kind="k", limit=10)] != []
            assert await client.bulk_retry_from_dlq(queue="aq") == 3
            for job in await client.claim("aq", 3):
                await client.fail(job.id, job.run_lease, "boom")
            assert await client.bulk_move_failed_to_dlq(kind="k") == 3
            assert await client.purge_dlq(tag="t") == 3 and await client.dlq_depth() == 0

    asyncio.run(main())
