"""A worker's connections are bounded by its pool, not by the width of what it serves."""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg.conninfo import make_conninfo

from awa.routing import PartitionedQueue
from awa.worker import connection_budget
from awa.worker.config import plan_queues
from worker_support.helpers import FAST, Ping, WorkerClient

WIDTH = 10_000
JOBS = 3_000


def _backends(url: str, app: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]


def test_budget_does_not_grow_with_width():
    wide = plan_queues(PartitionedQueue("w", WIDTH).queue_configs(max_workers_per_partition=1), global_max_workers=None, declared_queues=set())
    narrow = plan_queues(PartitionedQueue("w", 2).queue_configs(max_workers_per_partition=1), global_max_workers=None, declared_queues=set())
    assert connection_budget(wide) == connection_budget(narrow) == 5
    assert connection_budget(wide, 3) == 3


def test_wide_queue_of_failing_jobs_stays_inside_the_pool(database_url):
    app = "awa-width-test"
    url = make_conninfo(database_url, application_name=app)
    pq = PartitionedQueue("wide", WIDTH)
    client = WorkerClient(url, max_connections=2)

    @client.task("boom", queue=pq.logical_queue)
    async def boom(job):
        raise RuntimeError("fails on purpose")

    client.insert_many_copy(
        [Ping(i) for i in range(JOBS)], kind="boom", queue=pq.logical_queue, max_attempts=1,
        opts=[{"queue": pq.queue_for_index(i % WIDTH)} for i in range(JOBS)],
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _backends(database_url, app))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        client.start(pq.queue_configs(max_workers_per_partition=1), **FAST)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(client.list_jobs(state="failed", limit=JOBS + 1)) >= JOBS:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the failing jobs were not all failed within 60 s")
    finally:
        done.set()
        sampler.join()
        client.shutdown(0)
        client.close()
    # client pool (2) + worker pool (5) + LISTEN + leader lock
    assert peak <= 2 + 5 + 2, peak
