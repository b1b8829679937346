"""awa-pg's transactions on real PostgreSQL: jobs and the application's rows commit or roll back together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import psycopg
import pytest

import awa
from awa.client import AsyncClient, Client


@dataclass
class SendEmail:
    to: str
    subject: str


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        with c.transaction() as tx:
            tx.execute("CREATE TABLE orders (id bigint PRIMARY KEY, note text)")
        yield c


def _orders(client) -> list[int]:
    with client.transaction() as tx:
        return [r["id"] for r in tx.fetch_all("SELECT id FROM orders ORDER BY id")]


def test_sync_context_manager_commits_the_job_and_the_row_together(client):
    with client.transaction() as tx:
        assert tx.execute("INSERT INTO orders VALUES ($1, $2)", 1, "first") == 1
        job = tx.insert(SendEmail(to="a@example.com", subject="hi"), queue="email")
        many = tx.insert_many([SendEmail("b@x", "1"), SendEmail("c@x", "2")], queue="email")
        # inside the transaction both are visible on its connection
        assert tx.fetch_one("SELECT kind, queue FROM awa.jobs WHERE id = $1", job.id) == {
            "kind": "send_email", "queue": "email"}
    assert job.state == awa.JobState.Available and [j.kind for j in many] == ["send_email"] * 2
    assert _orders(client) == [1]
    assert client.get_job(job.id).args == {"to": "a@example.com", "subject": "hi"}
    assert len(client.list_jobs(queue="email")) == 3


def test_sync_exception_rolls_back_both(client):
    with pytest.raises(RuntimeError, match="boom"):
        with client.transaction() as tx:
            tx.execute("INSERT INTO orders VALUES ($1, $2)", 2, "gone")
            job = tx.insert({"n": 1}, kind="k", queue="rb")
            raise RuntimeError("boom")
    assert _orders(client) == []
    assert client.find_job(job.id) is None
    with pytest.raises(awa.AwaError, match=f"job not found: {job.id}"):
        client.get_job(job.id)
    assert client.list_jobs(queue="rb") == []


def test_sync_explicit_commit_rollback_and_finished_state(client):
    tx = client.transaction()
    job = tx.insert({"n": 1}, kind="k", queue="explicit")
    tx.rollback()
    with pytest.raises(awa.AwaError, match="Transaction already committed or rolled back"):
        tx.commit()
    with pytest.raises(awa.AwaError, match="Transaction already committed or rolled back"):
        tx.execute("SELECT 1")
    assert client.find_job(job.id) is None

    tx = client.transaction()
    job = tx.insert({"n": 2}, kind="k", queue="explicit")
    tx.commit()
    assert client.get_job(job.id).args == {"n": 2}


def test_sync_fetch_helpers_and_errors(client):
    with client.transaction() as tx:
        tx.execute("INSERT INTO orders VALUES ($1, $2), ($3, $4)", 1, "a", 2, "b")
        assert tx.fetch_optional("SELECT note FROM orders WHERE id = $1", 9) is None
        assert tx.fetch_all("SELECT id, note FROM orders ORDER BY id") == [
            {"id": 1, "note": "a"}, {"id": 2, "note": "b"}]
        assert tx.fetch_one("SELECT $1::jsonb AS doc", {"k": [1, 2]}) == {"doc": {"k": [1, 2]}}
        with pytest.raises(awa.DatabaseError, match="no rows returned"):
            tx.fetch_one("SELECT id FROM orders WHERE id = $1", 9)
    tx = client.transaction()
    with pytest.raises(awa.DatabaseError, match="syntax error") as caught:
        tx.execute("SELEC nonsense")
    assert isinstance(caught.value.__cause__, psycopg.Error) and isinstance(caught.value, awa.AwaError)
    tx.rollback()
    with pytest.raises(TypeError, match="do not pass conn="):
        with client.transaction() as tx:
            tx.insert({"n": 1}, kind="k", conn=object())
    # the pool got every connection back: more transactions than pool slots work
    for i in range(15):
        with client.transaction() as tx:
            tx.execute("SELECT 1")


def test_sync_run_at_iso_string_in_a_transaction(client):
    with client.transaction() as tx:
        job = tx.insert({"n": 1}, kind="later", run_at="2030-01-02T03:04:05+00:00")
    assert job.state == awa.JobState.Scheduled
    assert job.run_at.isoformat() == "2030-01-02T03:04:05+00:00"


def test_async_transaction_all_three_spellings(database_url):
    async def main() -> None:
        async with AsyncClient(database_url) as client:
            async with await client.transaction() as tx:
                await tx.execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
            async with await client.transaction() as tx:
                await tx.execute("INSERT INTO orders VALUES ($1)", 1)
                job = await tx.insert(SendEmail(to="x@y", subject="s"), queue="email")
                [a, b] = await tx.insert_many([{"i": 1}, {"i": 2}], kind="bulk", queue="email")
            assert (await client.get_job(job.id)).kind == "send_email" and b.id > a.id

            tx = await client.transaction()
            await tx.execute("INSERT INTO orders VALUES ($1)", 2)
            gone = await tx.insert({"n": 1}, kind="k")
            row = await tx.fetch_one("SELECT count(*)::bigint AS cnt FROM awa.jobs WHERE id = $1", gone.id)
            assert row["cnt"] == 1
            await tx.rollback()
            with pytest.raises(awa.AwaError, match="already committed or rolled back"):
                await tx.rollback()
            assert await client.find_job(gone.id) is None

            with pytest.raises(ValueError):
                async with client.transaction() as tx:
                    await tx.execute("INSERT INTO orders VALUES ($1)", 3)
                    raise ValueError("no")
            async with client.transaction() as tx:
                ids = [r["id"] for r in await tx.fetch_all("SELECT id FROM orders ORDER BY id")]
                assert await tx.fetch_optional("SELECT id FROM orders WHERE id = $1", 3) is None
                with pytest.raises(awa.DatabaseError, match="no rows returned"):
                    await tx.fetch_one("SELECT id FROM orders WHERE id = $1", 3)
            assert ids == [1]

    asyncio.run(main())
