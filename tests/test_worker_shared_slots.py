"""Shared slots (ADR 0014) as a property, on a real PostgreSQL: whatever the
width, the cap, the number of claim loops and how the jobs are spread over the
partitions, a shared-slots entry never runs more jobs at once than its slots,
and every job runs exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from awa.routing import PartitionedQueue
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, count_state, run, states, wait_until

# Each example starts a worker runtime and drains a backlog (about half a second):
# a quarter of the profile's examples (ci: 10, deep: 500).
EXAMPLES = max(10, settings().max_examples // 4)


@settings(max_examples=EXAMPLES)
@given(
    width=st.integers(1, 4),
    cap=st.integers(1, 5),
    claimers=st.integers(1, 2),
    batch=st.integers(1, 8),
    counts=st.lists(st.integers(0, 12), min_size=4, max_size=4),
)
def test_a_shared_entry_never_runs_more_than_its_slots_and_runs_every_job_once(
    database_factory, width, cap, claimers, batch, counts
):
    counts = counts[:width]
    total = sum(counts)
    assume(total > 0)
    pq = PartitionedQueue("shared", width)
    url = database_factory(migrated=True)
    try:

        async def main():
            client = WorkerAsyncClient(url)
            running = peak = 0
            ran: Counter[tuple[str, int]] = Counter()

            @client.task(Ping, queue=pq.physical_queues[0])
            async def slow(job):
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                ran[(job.queue, job.args.n)] += 1
                await asyncio.sleep(0.005)
                running -= 1

            for index, count in enumerate(counts):
                if count:
                    await client.insert_many_copy([Ping(i) for i in range(count)], queue=pq.queue_for_index(index))
            config = pq.shared_queue_config(cap, claimers=claimers, claim_batch_size=batch)
            await client.start([config], **FAST)
            try:
                await wait_until(lambda: _completed(client, total), timeout=10)
            finally:
                await client.shutdown()
                await client.close()
            return peak, ran

        peak, ran = run(main())
        assert 1 <= peak <= cap
        expected = {(pq.physical_queues[p], i): 1 for p, count in enumerate(counts) for i in range(count)}
        assert dict(ran) == expected
        assert states(url) == {"completed": total}
    finally:
        database_factory.drop(url)


async def _completed(client, n: int) -> bool:
    return await count_state(client, "completed") >= n
