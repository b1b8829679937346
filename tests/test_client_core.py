"""Core enqueue / claim / complete through the sync and async clients, on real PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from awa.client import AsyncClient, Client, Job, JobState
from awa.errors import ValidationError


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def test_insert_claim_complete_roundtrip(client):
    job = client.insert({"n": 1}, kind="demo", queue="q1")
    assert isinstance(job, Job)
    # numbered by the claim, not by the insert (ADR 0028)
    assert job.state is JobState.AVAILABLE and job.lane_seq is None and job.queue == "q1"
    stored = client.get_job(job.id)
    assert stored.args == {"n": 1} and stored.kind == "demo" and stored.lane_seq is None
    assert stored.created_at == job.created_at and stored.run_at == job.run_at

    claimed = client.claim(["q1"], 10)
    assert [j.id for j in claimed] == [job.id]
    running = claimed[0]
    assert running.state is JobState.RUNNING and running.run_lease == 1 and running.attempt == 1
    assert running.lane_seq == 1

    assert client.complete(job.id, running.run_lease) is True
    assert client.get_job(job.id).state is JobState.COMPLETED
    # A second completion with the same lease is stale now.
    assert client.complete(job.id, running.run_lease) is False


def test_claim_returns_nothing_from_empty_or_other_queue(client):
    client.insert({"n": 1}, kind="demo", queue="a")
    assert client.claim(["b"], 5) == []
    assert len(client.claim(["a", "b"], 5)) == 1
    assert client.claim(["a"], 5) == []


def test_async_client_shares_behaviour(database_url):
    async def main():
        async with AsyncClient(database_url) as c:
            job = await c.insert({"x": 2}, kind="demo")
            jobs = await c.insert_many_copy([{"i": i} for i in range(5)], kind="demo")
            assert [j.lane_seq for j in jobs] == [2, 3, 4, 5, 6]
            claimed = await c.claim("default", 3)
            assert [j.id for j in claimed] == [job.id, jobs[0].id, jobs[1].id]
            assert await c.complete(claimed[0].id, claimed[0].run_lease) is True
            assert await c.complete(claimed[0].id, claimed[0].run_lease) is False
            return (await c.get_job(job.id)).state

    assert asyncio.run(main()) is JobState.COMPLETED


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1 AS a, 'x' AS \"Ünï\"",
        "SELECT",
        "CREATE TEMP TABLE other_t (x int)",
        "INSERT INTO names_t VALUES (1)",
        "INSERT INTO names_t VALUES (2) RETURNING x, x AS y",
        "UPDATE names_t SET x = 3",
        "SELECT * FROM awa.jobs WHERE false",
    ],
)
def test_result_names_agree_with_cursor_description(database_url, statement):
    """The drivers read column names from the result, not from cursor.description
    (which builds objects on every access): same names, same 'no rows' cases."""
    from awa.storage.drivers import result_names

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS names_t (x int)")
        cur = conn.execute(statement)
        described = None if cur.description is None else [c.name for c in cur.description]
        assert result_names(cur) == described


def test_array_parameters_sent_as_literals_arrive_exactly(database_url):
    """Queue names and ids travel as array literals cast by the query: every
    name the validator accepts must arrive unchanged, whatever its characters."""
    from awa.storage.ops import int_array, text_array

    names = ['plain', 'with space', 'com,ma', 'br{ac}es', 'quo"te', 'back\\slash', "'single'", 'ünïcödé', 'NULL', '']
    ints = [0, 1, -1, 2**62, -(2**63)]
    with psycopg.connect(database_url) as conn:
        got_names, got_ints, empty = conn.execute(
            "SELECT %s::text[], %s::bigint[], %s::integer[]", (text_array(names), int_array(ints), int_array([]))
        ).fetchone()
    assert got_names == names and got_ints == ints and empty == []


def test_claim_and_complete_with_awkward_queue_names(client):
    """The claim statement's queue array is a literal: names with every
    punctuation the grammar allows claim their own jobs and only those; names
    with quotes, commas, braces, backslashes or spaces are rejected."""
    for bad in ['a,b', 'c"d', 'e\\f', '{g}', 'h i']:
        with pytest.raises(ValidationError, match="may contain only"):
            client.insert({}, kind="k", queue=bad)
        with pytest.raises(ValidationError, match="may contain only"):
            client.claim([bad], 1)
    names = ['a.b', 'c:d', 'e-f', '_g_', 'H9', 'x__p', 'x__p1', 'x___p1']
    for name in names:
        client.insert({"q": name}, kind="k", queue=name)
    claimed = client.executor.run(client.core.claim(names, 20, None, 0, limits=[2] * len(names)), tx=False)
    assert sorted(j.queue for j in claimed) == sorted(names)
    assert all(j.args["q"] == j.queue for j in claimed)
    client.complete_many([(j.id, j.run_lease) for j in claimed])
    assert sorted(j.queue for j in client.list_jobs(state="completed", limit=100)) == sorted(names)


def test_a_pooled_connection_keeps_one_cursor_that_outlives_a_failed_statement(database_url):
    """The executors run an operation's statements on the pooled connection's
    kept cursor. A statement that fails on it (a unique conflict, inside the
    operation's transaction) leaves it usable, and the next operations run on
    the same cursor; a caller's own connection is never given one."""
    from awa.errors import UniqueConflict
    from awa.storage.drivers import PooledConnection

    with Client(database_url, max_connections=1, min_connections=1) as client:
        first = client.insert({"n": 1}, kind="demo", queue="kept", unique_opts={"by_args": True})
        with client.connection() as conn:
            assert isinstance(conn, PooledConnection)
            kept = conn.statement_cursor()
        with pytest.raises(UniqueConflict):
            client.insert({"n": 1}, kind="demo", queue="kept", unique_opts={"by_args": True})
        second = client.insert({"n": 2}, kind="demo", queue="kept")
        assert [j.id for j in client.claim(["kept"], 10)] == [first.id, second.id]
        with client.connection() as conn:
            assert conn.statement_cursor() is kept
    with psycopg.connect(database_url, autocommit=True) as own:
        assert not isinstance(own, PooledConnection)
        assert Client(own).get_job(second.id).state is JobState.RUNNING


def test_an_async_pooled_connection_keeps_one_cursor(database_url):
    from awa.storage.drivers import AsyncPooledConnection

    async def main() -> None:
        client = AsyncClient(database_url, max_connections=1, min_connections=1)
        try:
            job = await client.insert({"n": 1}, kind="demo", queue="kept_async")
            async with client.connection() as conn:
                assert isinstance(conn, AsyncPooledConnection)
                kept = conn.statement_cursor()
            assert [j.id for j in await client.claim(["kept_async"], 10)] == [job.id]
            async with client.connection() as conn:
                assert conn.statement_cursor() is kept
        finally:
            await client.close()

    asyncio.run(main())
