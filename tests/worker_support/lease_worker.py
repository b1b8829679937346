"""A worker process for the frozen-leader test: holds its jobs and the lease.

Usage: python lease_worker.py DATABASE_URL QUEUE LEASE_MS
Prints ``READY`` once started, ``LEADER`` once it holds the maintenance lease
and ``START <job_id>`` when a handler begins; handlers never return (the test
freezes the process with SIGSTOP, then kills it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for worker_support

from worker_support.helpers import FAST, Ping, WorkerAsyncClient  # noqa: E402


async def main(url: str, queue: str, lease_ms: int) -> None:
    client = WorkerAsyncClient(url)

    @client.task(Ping, queue=queue)
    async def hold(job):
        print(f"START {job.id}", flush=True)
        await asyncio.sleep(3600)

    await client.start([(queue, 20)], **{**FAST, "leader_lease_ms": lease_ms})
    print("READY", flush=True)
    while not client.worker_runtime.is_leader:
        await asyncio.sleep(0.02)
    print("LEADER", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
