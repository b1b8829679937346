"""Hot statements keep index plans when their tables were analysed empty (ADR 0039).

PostgreSQL plans a statement for the table sizes it sees when it plans it.
After ``VACUUM ANALYZE`` of a drained queue every hot table holds 0 rows,
so a sequential scan is the cheapest plan; a cached plan then keeps
scanning whole tables as a backlog builds up (every single insert read all
of ``lane_pending``: quadratic). Here the tables are analysed empty, a
workload builds a backlog through every hot path (single inserts on both
paths, COPY with ordering and concurrency keys, scheduled jobs, retries, a
governed queue) and a worker drains it; the tables that grow with the
backlog must never have been read by a sequential scan.
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg

from awa.routing import PartitionedQueue
from awa.worker.outcomes import RetryAfter
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run, wait_until

# Tables whose size follows the backlog or the number of lanes. (`queues`, one
# row per physical queue, is left out: a worker's start-up reads it whole.)
GROWING = ("jobs", "lane_pending", "lane_segments", "enqueue_heads", "claim_heads", "key_parked")
STATS = "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE schemaname = 'awa'"


def _stats(url: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: (scans, read) for name, scans, read in conn.execute(STATS).fetchall()}


def _settled_stats(url: str) -> dict[str, tuple[int, int]]:
    """The counters once every closed backend has reported its own (at exit)."""
    last, deadline = _stats(url), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _stats(url)
        if now == last:
            return now
        last = now
    return last


def test_a_backlog_after_an_empty_analyse_is_never_scanned(database_url):
    pq = PartitionedQueue("orders", 2)
    n_single, n_copy, n_governed, n_later = 150, 300, 60, 20
    total = n_single + n_copy + n_governed + n_later

    async def main():
        client = WorkerAsyncClient(database_url)
        await client.create_key_policy("governed", 1)
        done: set[int] = set()

        async def ping(job):
            if job.args.n % 25 == 0 and job.attempt == 1:
                raise RetryAfter(0.05)  # finish_attempt, then promotion of the retry
            done.add(job.args.n)
            return None

        for queue in [*pq.physical_queues, "governed"]:
            client.task(Ping, queue=queue)(ping)
        for i in range(n_single):
            await client.insert(Ping(i), **pq.route_by_key(f"customer-{i % 40}"))
        await client.insert_many_copy(
            [Ping(n_single + i) for i in range(n_copy)],
            opts=[pq.route_by_key(f"customer-{i % 40}") | {"concurrency_key": f"c{i % 7}"} for i in range(n_copy)],
        )
        base = n_single + n_copy
        for i in range(n_governed):
            await client.insert(Ping(base + i), queue="governed", concurrency_key=f"g{i % 5}")
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=300)
        for i in range(n_later):
            await client.insert(Ping(base + n_governed + i), queue="orders", run_at=soon)
        await client.start([*pq.queue_configs(4), ("governed", 4)], **FAST)
        try:
            await wait_until(lambda: len(done) == total, timeout=60)
        finally:
            await client.shutdown()
            await client.close()

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # every table analysed empty: estimates of 0 rows
    before = _settled_stats(database_url)
    run(main())
    after = _settled_stats(database_url)
    scanned = {
        name: (after[name][0] - before.get(name, (0, 0))[0], after[name][1] - before.get(name, (0, 0))[1])
        for name in GROWING
        if after[name][1] > before.get(name, (0, 0))[1]
    }
    assert scanned == {}, f"(sequential scans, rows they read) per table: {scanned}"
