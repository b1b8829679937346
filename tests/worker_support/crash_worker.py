"""A worker process for the kill -9 test: runs slow jobs and reports each start.

Usage: python crash_worker.py DATABASE_URL LOGICAL_QUEUE PARTITIONS
Prints ``START <job_id> <run_lease>`` when a handler begins and ``DONE <job_id>``
when it returns; it never exits on its own (the test kills it with SIGKILL).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for worker_support

from awa.routing import PartitionedQueue  # noqa: E402
from worker_support.helpers import FAST, Ping, WorkerAsyncClient  # noqa: E402


async def main(url: str, logical: str, partitions: int) -> None:
    pq = PartitionedQueue(logical, partitions)
    client = WorkerAsyncClient(url)

    @client.task(Ping, queue=pq.physical_queues[0])
    async def slow(job):
        print(f"START {job.id} {job.run_lease}", flush=True)
        await asyncio.sleep(0.4)
        print(f"DONE {job.id}", flush=True)

    await client.start(pq.queue_configs(max_workers_per_partition=4), **FAST)
    print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
