"""The storage schema is configurable and created by the versioned migrations."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from awa.client import AsyncClient, Client, JobState
from awa.storage.migrate import migrate


def test_custom_schema_end_to_end(database_factory):
    url = database_factory(migrated=False)
    with Client(url, schema="tenant_a") as client:
        client.migrate()
        client.migrate()  # idempotent
        assert client.notify_channel == "tenant_a_jobs"
        job = client.insert({"a": 1}, kind="k", queue="q")
        [claimed] = client.claim(["q"], 1)
        assert claimed.id == job.id and client.complete(claimed.id, claimed.run_lease)
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tenant_a'")}
        assert {"jobs", "queues", "enqueue_heads", "claim_heads", "dlq_entries"} <= tables
        assert conn.execute("SELECT to_regclass('awa.jobs')").fetchone()[0] is None


def test_two_schemas_in_one_database_are_independent(database_url):
    with psycopg.connect(database_url) as conn:
        migrate(conn, "other")
    with Client(database_url) as a, Client(database_url, schema="other") as b:
        a.insert({"a": 1}, kind="k")
        assert b.claim(["default"], 5) == []
        jb = b.insert({"b": 1}, kind="k")
        assert [j.state for j in a.claim(["default"], 5)] == [JobState.RUNNING]
        assert [(j.id, j.lane_seq) for j in b.claim(["default"], 5)] == [(jb.id, 1)]


def test_async_migrate(database_factory):
    url = database_factory(migrated=False)

    async def main():
        async with AsyncClient(url, schema="async_s") as c:
            await c.migrate()
            job = await c.insert({"x": 1}, kind="k")
            return (await c.get_job(job.id)).args

    assert asyncio.run(main()) == {"x": 1}


@pytest.mark.parametrize("bad", ["", "1abc", "has space", 'quo"te', "x" * 64])
def test_bad_schema_names_are_rejected(database_url, bad):
    from awa.errors import ValidationError

    with pytest.raises(ValidationError):
        Client(database_url, schema=bad)


@pytest.mark.parametrize(("column", "bad", "good"), [
    ("priority", 0, 1), ("priority", 5, 4), ("max_attempts", 0, 1), ("max_attempts", 1001, 1000),
    ("enqueue_shard", -1, 0), ("enqueue_shard", 64, 63),
])
def test_the_database_itself_refuses_out_of_range_job_columns(database_url, column, bad, good):
    # The ranges are domains (ADR 0034), checked on a raw INSERT and UPDATE
    # that bypass the client's validation; clients read the base type.
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        insert = sql.SQL("INSERT INTO awa.jobs (kind, queue, args, state, {}) VALUES ('k', 'q', '{{}}', 'scheduled', %s) "
                         "RETURNING id, {}").format(sql.Identifier(column), sql.Identifier(column))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, (bad,))
        job_id, value = conn.execute(insert, (good,)).fetchone()
        assert value == good and type(value) is int
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(sql.SQL("UPDATE awa.jobs SET {} = %s WHERE id = %s").format(sql.Identifier(column)), (bad, job_id))
        conn.execute("DELETE FROM awa.jobs WHERE id = %s", (job_id,))


def test_a_lane_cannot_count_negative_holes(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO awa.claim_heads (queue, priority, enqueue_shard, holes) VALUES ('q_holes', 2, 0, -1)")
