"""kill -9 a worker process in the middle of jobs: nothing is lost, nothing finalized twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from awa.routing import PartitionedQueue
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run

CHILD = Path(__file__).parent / "worker_support" / "crash_worker.py"
JOBS = 60


def _read_lines(proc: subprocess.Popen, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())


def test_sigkill_mid_job_every_held_job_is_rescued_and_completed_once(database_url):
    pq = PartitionedQueue("crash", 2)

    async def enqueue():
        client = WorkerAsyncClient(database_url)
        await client.insert_many_copy(
            [Ping(i) for i in range(JOBS)], queue=pq.logical_queue,
            opts=[{"queue": pq.queue_for_index(i % 2)} for i in range(JOBS)],
        )
        await client.close()

    run(enqueue())
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), database_url, pq.logical_queue, "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        # Kill once some jobs finished and a full set of 8 is in the handlers' hands.
        while time.monotonic() < deadline:
            done = sum(1 for line in lines if line.startswith("DONE"))
            started = sum(1 for line in lines if line.startswith("START"))
            if done >= 8 and started - done >= 8:
                break
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early: {proc.stderr.read()}")
            time.sleep(0.005)
        else:
            raise AssertionError(f"worker made no progress: {lines[-5:]}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(5)
    assert proc.returncode == -signal.SIGKILL

    async def recover():
        client = WorkerAsyncClient(database_url)
        before = {j.id: j for j in await client.list_jobs(limit=1000)}
        held = {i: j.run_lease for i, j in before.items() if j.state.value == "running"}
        completed_by_dead = {i for i, j in before.items() if j.state.value == "completed"}
        runs: Counter[int] = Counter()

        @client.task(Ping, queue=pq.physical_queues[0])
        async def fast(job):
            runs[job.id] += 1

        await client.start(pq.queue_configs(max_workers_per_partition=4), **FAST)
        try:
            t0 = time.monotonic()
            while len(await client.list_jobs(state="completed", limit=1000)) < JOBS:
                assert time.monotonic() - t0 < 30, "jobs were lost"
                await asyncio.sleep(0.05)
        finally:
            await client.shutdown()
        after = {j.id: j for j in await client.list_jobs(limit=1000)}
        # The dead attempts try to complete late: every one is rejected, nothing changes.
        late = await client.complete_many(list(held.items()))
        again = {j.id: j for j in await client.list_jobs(limit=1000)}
        await client.close()
        return held, completed_by_dead, runs, after, late, again

    held, completed_by_dead, runs, after, late, again = run(recover())
    assert len(held) >= 8  # the dead worker really held jobs when it was killed
    assert len(after) == JOBS and all(j.state.value == "completed" for j in after.values())
    for job_id, dead_lease in held.items():
        job = after[job_id]
        assert job.run_lease > dead_lease and job.attempt >= 2
        assert any("heartbeat expired" in e["error"] for e in job.errors)
        assert runs[job_id] == 1
    # Nothing completed by the dead worker ran again; every other job ran once here.
    assert not (set(runs) & completed_by_dead)
    assert set(runs) | completed_by_dead == set(after)
    assert late == [False] * len(held)
    assert {i: (j.finalized_at, j.run_lease) for i, j in again.items()} == {
        i: (j.finalized_at, j.run_lease) for i, j in after.items()
    }
