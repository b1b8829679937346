"""Core enqueue / claim / complete through the sync and async clients, on real PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from awa.client import AsyncClient, Client, Job, JobState


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def test_insert_claim_complete_roundtrip(client):
    job = client.insert({"n": 1}, kind="demo", queue="q1")
    assert isinstance(job, Job)
    assert job.state is JobState.AVAILABLE and job.lane_seq == 1 and job.queue == "q1"
    stored = client.get_job(job.id)
    assert stored.args == {"n": 1} and stored.kind == "demo" and stored.lane_seq == 1
    assert stored.created_at == job.created_at and stored.run_at == job.run_at

    claimed = client.claim(["q1"], 10)
    assert [j.id for j in claimed] == [job.id]
    running = claimed[0]
    assert running.state is JobState.RUNNING and running.run_lease == 1 and running.attempt == 1

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
