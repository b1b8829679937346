"""Poison isolation: a job row the client cannot decode never blocks the
other jobs of its claim. They run; the bad one fails with a clear error."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from awa import Client
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run, wait_until

GOOD = 9
DEEP = "[" * 3000 + "]" * 3000  # valid jsonb; Python's json gives up (RecursionError)

POISONS = {
    # year 1 at +14:00 is 0001-12-31 BC in UTC: no Python datetime holds it
    "run_at": ("{}", "0001-01-01 00:00:00+14"),
    "args": (DEEP, None),
}

INSERT = (
    "SELECT id FROM awa.insert_job('poison', 1::smallint, 2::smallint, 0::smallint, 'ping', %s::jsonb, "
    "%s::smallint, NULL, NULL, NULL, %s::timestamptz, NULL, 'awa_jobs')"
)


def _insert(url: str, poison: str, max_attempts: int = 25) -> int:
    """9 good jobs and one poisoned one in the middle, all by SQL; the poisoned id."""
    args, run_at = POISONS[poison]
    with psycopg.connect(url, autocommit=True) as conn:
        ids = []
        for n in range(GOOD + 1):
            bad = n == 4
            row = conn.execute(INSERT, (args if bad else '{"n": %d}' % n, max_attempts, run_at if bad else None))
            ids.append(row.fetchone()[0])
    return ids[4]


def _rows(url: str) -> dict[int, tuple[str, object]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, state::text, errors FROM awa.jobs ORDER BY id").fetchall()
    return {i: (state, errors) for i, state, errors in rows}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_worker_runs_the_good_jobs_of_a_claim_and_fails_the_poisoned_one(database_url, poison):
    bad = _insert(database_url, poison)

    async def main():
        client = WorkerAsyncClient(database_url)
        ran: list[int] = []

        @client.task(Ping, queue="poison")
        async def ping(job):
            ran.append(job.args.n)

        await client.start([("poison", 20)], **FAST)
        try:
            await wait_until(
                lambda: sorted(s for s, _ in _rows(database_url).values()) == ["completed"] * GOOD + ["failed"],
                timeout=10,
            )
        finally:
            await client.shutdown()
            await client.close()
        return ran

    ran = run(main())
    assert sorted(ran) == [n for n in range(GOOD + 1) if n != 4]
    state, errors = _rows(database_url)[bad]
    assert state == "failed"
    [error] = errors
    assert error["error"].startswith(f"could not decode job {bad} ") and poison in error["error"]


def test_a_poisoned_row_does_not_fail_the_claim_of_a_plain_client(database_url):
    bad = _insert(database_url, "run_at")
    client = Client(database_url)
    try:
        jobs = client.claim(["poison"], 20)
    finally:
        client.close()
    assert len(jobs) == GOOD and bad not in {j.id for j in jobs}
    # The claim failed it in the same call: nothing is left running.
    assert sorted(s for s, _ in _rows(database_url).values()) == ["failed"] + ["running"] * GOOD
