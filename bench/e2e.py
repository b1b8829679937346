"""End to end: enqueue N no-op jobs into a width-W partitioned queue, then drain
them with the worker runtime; then measure pickup latency on the idle runtime.

* completed jobs/s = N / (time from ``start()`` to the N-th handler call);
* pickup latency   = handler start - enqueue wall time, for ``probe_jobs`` single
  jobs enqueued one at a time ``probe_interval_ms`` apart after the drain (so it
  measures wake-up + claim, not time spent waiting behind a backlog).

With ``processes`` > 1 the drain runs in that many worker processes, each
serving every partition, the ``workers`` split evenly between them
(bench/worker_processes.py); the parent enqueues, times and probes.

bench/awa_pg_side.py measures awa-pg the same way.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.e2e_common import enqueue_backlog, pickup_figures, send_probes
from bench.producer import JOB_KIND, BenchNoop, _close, open_async_client, open_pool, run_within


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
    slots: str = "per-partition",
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

    out: dict[str, Any] = {"width": width, "workers": workers, "processes": 1, "slots": slots, "stalled": False}
    try:
        out["enqueue_s"] = await enqueue_backlog(client, pq, BenchNoop, JOB_KIND, total, chunk)

        drain_started = time.perf_counter()
        await client.start(worker_configs(pq, workers, 1, slots), poll_interval_ms=poll_interval_ms)
        try:
            await asyncio.wait_for(drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            out["stalled"] = True
        drain_s = time.perf_counter() - drain_started
        out.update(completed=completed, drain_s=drain_s, jobs_per_s=completed / drain_s if drain_s > 0 else None)

        if probe_jobs and not out["stalled"]:
            await send_probes(client, pq, BenchNoop, JOB_KIND, probe_jobs, probe_interval_ms / 1000)
            try:
                await asyncio.wait_for(probe_done.wait(), 30)
            except asyncio.TimeoutError:
                out["probe_stalled"] = True
        out.update(pickup_figures(probe_latencies))
        out["ok"] = True
    finally:
        try:
            await asyncio.wait_for(client.shutdown(timeout_ms=5000), 15)
        except Exception:
            out["shutdown_error"] = True
        await _close(client)
    return out


def per_partition_workers(workers: int, width: int, processes: int) -> int:
    """max_workers of each partition in each process: ``workers`` in all, rounded up."""
    return max(1, -(-workers // (width * processes)))


SLOT_MODES = ("per-partition", "shared")


def worker_configs(pq: Any, workers: int, processes: int, slots: str) -> list[dict[str, Any]]:
    """One process's queue configs for ``workers`` in all: split over the
    partitions (``queue_configs``, awa's model) or shared by them
    (``shared_queue_config``, ADR 0014)."""
    if slots == "shared":
        return [pq.shared_queue_config(max(1, -(-workers // processes)))]
    if slots != "per-partition":
        raise ValueError(f"slots must be one of {SLOT_MODES}, got {slots!r}")
    return pq.queue_configs(per_partition_workers(workers, len(pq), processes))


def _worker_process(slot: Any, database_url: str, width: int, workers: int, processes: int, slots: str, poll_interval_ms: int) -> None:
    """One worker process of a multi-process drain (runs in a spawned child)."""

    async def main() -> None:
        from awa.routing import PartitionedQueue

        client = open_async_client(database_url)
        await open_pool(client)
        pq = PartitionedQueue(f"e2e_w{width}", width)

        for queue in pq.physical_queues:
            client.task(BenchNoop, kind=JOB_KIND, queue=queue)(slot.run_job)
        slot.ready()
        await slot.go_signal()
        await client.start(worker_configs(pq, workers, processes, slots), poll_interval_ms=poll_interval_ms)
        try:
            await slot.stop_signal()
        finally:
            await asyncio.wait_for(client.shutdown(timeout_ms=5000), 15)
            await _close(client)

    asyncio.run(main())


def run_ours_processes(
    database_url: str,
    *,
    total: int,
    chunk: int,
    width: int,
    workers: int,
    processes: int,
    probe_jobs: int = 100,
    probe_interval_ms: float = 20,
    timeout_s: float = 120,
    poll_interval_ms: int = 200,
    slots: str = "per-partition",
) -> dict[str, Any]:
    """The drain in ``processes`` worker processes (the parent enqueues and times)."""
    from awa.routing import PartitionedQueue

    from bench.worker_processes import WorkerProcesses

    pq = PartitionedQueue(f"e2e_w{width}", width)
    out: dict[str, Any] = {"width": width, "workers": workers, "processes": processes, "slots": slots, "stalled": False}
    pool = WorkerProcesses(
        _worker_process, (database_url, width, workers, processes, slots, poll_interval_ms), processes, probe_jobs
    )

    async def parent() -> None:
        client = open_async_client(database_url)
        await open_pool(client)
        try:
            out["enqueue_s"] = await enqueue_backlog(client, pq, BenchNoop, JOB_KIND, total, chunk)
            pool.go()
            drain_s, stalled = await asyncio.get_running_loop().run_in_executor(None, pool.wait_completed, total, timeout_s)
            completed = pool.completed()
            out.update(stalled=stalled, completed=completed, drain_s=drain_s, jobs_per_s=completed / drain_s)
            if probe_jobs and not stalled:
                await send_probes(client, pq, BenchNoop, JOB_KIND, probe_jobs, probe_interval_ms / 1000)
        finally:
            await _close(client)

    try:
        pool.start()
        asyncio.run(parent())
        latencies = pool.wait_probes(30) if probe_jobs and not out["stalled"] else []
        if probe_jobs and len(latencies) < probe_jobs and not out["stalled"]:
            out["probe_stalled"] = True
        out.update(pickup_figures(latencies))
        out["ok"] = True
    finally:
        codes = pool.stop()
        if any(code != 0 for code in codes):
            out["worker_exit_codes"] = codes
    return out


def run_ours(database_url: str, processes: int = 1, **kwargs: Any) -> dict[str, Any]:
    if processes > 1:
        try:
            return run_ours_processes(database_url, processes=processes, **kwargs)
        except Exception as exc:
            return {"ok": False, "stalled": True, "error": f"{type(exc).__name__}: {exc}"}
    # An outer bound as well, so a hang anywhere (pool, start, shutdown) never
    # hangs the benchmark: drain timeout + probe wait + generous slack.
    limit = float(kwargs.get("timeout_s", 120)) + 90

    try:
        return run_within(run_ours_async(database_url, **kwargs), limit)
    except asyncio.TimeoutError:
        return {"ok": False, "stalled": True, "error": f"our side did not finish within {limit:.0f}s"}
