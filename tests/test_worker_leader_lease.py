"""Maintenance leadership is a lease row (ADR 0019): a frozen leader stops
rescue and promotion for at most one lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from awa.errors import ValidationError
from awa.storage.core import StorageCore
from awa.storage.drivers import SyncExecutor
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run, wait_until

CHILD = Path(__file__).parent / "worker_support" / "lease_worker.py"
LEASE_MS = 1000
JOBS = 10


def _ops(url: str):
    core = StorageCore("awa")
    executor = SyncExecutor(url, name="lease-test", min_size=1, max_size=1)
    return core, executor


def test_lease_is_taken_renewed_kept_and_taken_over_by_the_database_clock(database_url):
    core, ex = _ops(database_url)
    try:
        assert ex.run(core.acquire_leader_lease("maintenance", "a", 0.4)) is True
        assert ex.run(core.acquire_leader_lease("maintenance", "b", 0.4)) is False  # a's lease is live
        assert ex.run(core.acquire_leader_lease("maintenance", "a", 0.4)) is True  # renewal
        [row] = ex.run(core.leader_leases())
        assert (row["holder"], row["term"], row["live"]) == ("a", 1, True)
        time.sleep(0.5)  # a stops renewing: the database's clock lets b in
        assert ex.run(core.acquire_leader_lease("maintenance", "b", 0.4)) is True
        assert ex.run(core.acquire_leader_lease("maintenance", "a", 0.4)) is False  # a, resumed, is out
        [row] = ex.run(core.leader_leases())
        assert (row["holder"], row["term"]) == ("b", 2)
        assert ex.run(core.release_leader_lease("maintenance", "a")) is False  # not a's to release
        assert ex.run(core.release_leader_lease("maintenance", "b")) is True
        assert ex.run(core.acquire_leader_lease("maintenance", "a", 0.4)) is True  # no wait after a release
    finally:
        ex.close()


@pytest.mark.parametrize("bad", [0, -5, 10, 29, 1.5, "5000", True])
def test_leader_lease_ms_is_validated(database_url, bad):
    async def main():
        client = WorkerAsyncClient(database_url)

        @client.task(Ping, queue="v")
        async def ping(job):
            return None

        try:
            with pytest.raises(ValidationError, match="leader_lease_ms"):
                await client.start([("v", 1)], **{**FAST, "leader_lease_ms": bad})
        finally:
            await client.close()

    run(main())


def _read_lines(proc: subprocess.Popen, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())


def _job_states(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT state::text, count(*) FROM awa.jobs GROUP BY 1").fetchall()
    return dict(rows)


def test_a_sigstopped_leader_process_loses_the_lease_and_another_worker_rescues(database_url):
    async def enqueue():
        client = WorkerAsyncClient(database_url)
        await client.insert_many_copy([Ping(i) for i in range(JOBS)], queue="frozen")
        await client.close()

    run(enqueue())
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), database_url, "frozen", str(LEASE_MS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    threading.Thread(target=_read_lines, args=(proc, lines), daemon=True).start()
    stopped = False
    try:
        deadline = time.monotonic() + 30
        while not ("LEADER" in lines and sum(x.startswith("START") for x in lines) == JOBS):
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early: {proc.stderr.read()}")
            assert time.monotonic() < deadline, f"the child never led and held every job: {lines[-5:]}"
            time.sleep(0.01)

        async def survive():
            client = WorkerAsyncClient(database_url)
            ran: list[int] = []

            @client.task(Ping, queue="frozen")
            async def quick(job):
                ran.append(job.id)

            await client.start([("frozen", 20)], **{**FAST, "leader_lease_ms": LEASE_MS})
            try:
                # While the child renews, the lease stays its own (two leases' time).
                await asyncio.sleep(2 * LEASE_MS / 1000)
                assert not client.worker_runtime.is_leader
                os.kill(proc.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                # Its heartbeats stop too; rescue needs a leader, and only the lease's expiry makes one.
                await wait_until(lambda: _job_states(database_url).get("running", 0) == 0, timeout=20)
                rescued_after = time.monotonic() - frozen_at
                assert client.worker_runtime.is_leader
                await wait_until(lambda: _job_states(database_url) == {"completed": JOBS}, timeout=20)
                return rescued_after, sorted(ran)
            finally:
                await client.shutdown()
                await client.close()

        stopped = True
        rescued_after, ran = run(survive())
    finally:
        if stopped:
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)
    # staleness (0.6 s) or the lease (1 s) first, then one election round and one rescue round: a margin of 2 s.
    bound = (FAST["heartbeat_staleness_ms"] + LEASE_MS + FAST["leader_election_interval_ms"]
             + FAST["rescue_interval_ms"]) / 1000 + 2.0
    assert rescued_after < bound, f"rescued {rescued_after:.2f}s after the freeze (bound {bound:.2f}s)"
    assert len(ran) == JOBS and len(set(ran)) == JOBS
