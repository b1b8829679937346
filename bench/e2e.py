"""End to end: enqueue N no-op jobs into a width-W partitioned queue, then drain
them with the worker runtime; then measure pickup latency on the idle runtime.

* completed jobs/s = N / (time from ``start()`` to the N-th handler call);
* pickup latency   = handler start - enqueue wall time, for ``probe_jobs`` single
  jobs enqueued one at a time ``probe_interval_ms`` apart after the drain (so it
  measures wake-up + claim, not time spent waiting behind a backlog).

bench/awa_pg_side.py measures awa-pg the same way.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import percentile
from bench.producer import JOB_KIND, BenchNoop, _close, open_async_client, open_pool


async def run_ours_async(
    database_url: str,
    *,
    total: int,
    chunk: int,
    width: int,
    workers: int,
    probe_jobs: int = 100,
    probe_interval_ms: float = 20,
    timeout_s: float = 120,
    poll_interval_ms: int = 200,
) -> dict[str, Any]:
    from awa.routing import PartitionedQueue

    client = open_async_client(database_url)
    await open_pool(client)
    pq = PartitionedQueue(f"e2e_w{width}", width)
    completed = 0
    drained = asyncio.Event()
    probe_latencies: list[float] = []
    probe_done = asyncio.Event()

    async def handle(job: Any) -> None:
        nonlocal completed
        args = job.args
        if args.seq < 0:
            probe_latencies.append(time.time() - args.t)
            if len(probe_latencies) >= probe_jobs:
                probe_done.set()
            return None
        completed += 1
        if completed >= total:
            drained.set()
        return None

    for queue in pq.physical_queues:
        client.task(BenchNoop, kind=JOB_KIND, queue=queue)(handle)

    out: dict[str, Any] = {"width": width, "workers": workers, "stalled": False}
    try:
        enqueue_started = time.perf_counter()
        for lo in range(0, total, chunk):
            hi = min(lo + chunk, total)
            now = time.time()
            jobs = [BenchNoop(seq=i, t=now) for i in range(lo, hi)]
            await client.enqueue_many_copy(
                jobs, kind=JOB_KIND, queue=pq.logical_queue, opts=[pq.route_by_index(i) for i in range(lo, hi)]
            )
        out["enqueue_s"] = time.perf_counter() - enqueue_started

        per_partition = max(1, -(-workers // width))
        drain_started = time.perf_counter()
        await client.start(pq.queue_configs(per_partition), poll_interval_ms=poll_interval_ms)
        try:
            await asyncio.wait_for(drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            out["stalled"] = True
        drain_s = time.perf_counter() - drain_started
        out.update(completed=completed, drain_s=drain_s, jobs_per_s=completed / drain_s if drain_s > 0 else None)

        if probe_jobs and not out["stalled"]:
            for i in range(probe_jobs):
                await client.enqueue_many_copy(
                    [BenchNoop(seq=-1 - i, t=time.time())],
                    kind=JOB_KIND,
                    queue=pq.logical_queue,
                    opts=[pq.route_by_index(i)],
                )
                await asyncio.sleep(probe_interval_ms / 1000)
            try:
                await asyncio.wait_for(probe_done.wait(), 30)
            except asyncio.TimeoutError:
                out["probe_stalled"] = True
        latencies = sorted(probe_latencies)
        out["probe_count"] = len(latencies)
        out["pickup_p50_ms"] = None if not latencies else percentile(latencies, 50) * 1000
        out["pickup_p99_ms"] = None if not latencies else percentile(latencies, 99) * 1000
        out["ok"] = True
    finally:
        try:
            await asyncio.wait_for(client.shutdown(timeout_ms=5000), 15)
        except Exception:
            out["shutdown_error"] = True
        await _close(client)
    return out


def run_ours(database_url: str, **kwargs: Any) -> dict[str, Any]:
    # An outer bound as well, so a hang anywhere (pool, start, shutdown) never
    # hangs the benchmark: drain timeout + probe wait + generous slack.
    limit = float(kwargs.get("timeout_s", 120)) + 90

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(run_ours_async(database_url, **kwargs), limit)

    try:
        return asyncio.run(bounded())
    except asyncio.TimeoutError:
        return {"ok": False, "stalled": True, "error": f"our side did not finish within {limit:.0f}s"}
