"""The awa-pg half of the side-by-side benchmark.

Runs ONLY inside the benchmark's own virtualenv (``.bench-venv-awa-pg/``) where
the PyPI package ``awa-pg`` provides the import name ``awa``. It must never see
this repository's ``awa`` package, so the harness starts it with ``python -I``
from a neutral working directory, and it imports nothing from ``bench``: the
two standard-library-only files it shares with our side (worker_processes.py,
e2e_common.py) are loaded by path.

Protocol: one JSON command on stdin, one JSON result on the last stdout line.

    {"op": "migrate",  "database_url": ...}
    {"op": "producer", "database_url": ..., "total": 20000, "chunk": 2000,
     "queue": "bench_single", "width": 4 | null, "routing": "none"|"index"|"dicts"|"key"}
    {"op": "e2e",      "database_url": ..., "total": 20000, "chunk": 2000,
     "width": 4, "workers": 256, "probe_jobs": 100, "probe_interval_ms": 20,
     "timeout_s": 120, "max_connections": 150, "processes": 1}
    {"op": "single",   "database_url": ..., "mode": "async" | "threads", "producers": 32,
     "width": 8, "keyed": true, "duration_s": 3.0, "warmup_s": 0.5}

The measurement methods mirror bench/producer.py and bench/e2e.py exactly so
that the two sides' figures are comparable.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awa  # awa-pg (Rust core)


def _load_bench_module(stem: str) -> Any:
    """A standard-library-only file of bench/ (shared with our side), loaded by
    path: with ``python -I`` this file's folder is not on sys.path, and must not be."""
    name = f"awa_bench_{stem}"
    if name not in sys.modules:  # spawned children load it again when they import this script
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


worker_processes = _load_bench_module("worker_processes")
common = _load_bench_module("e2e_common")
single_common = _load_bench_module("single_common")

QUEUE_STORAGE_SCHEMA = "awa_qs_bench"
JOB_KIND = "bench_noop"


@dataclass
class BenchNoop:
    seq: int
    t: float  # wall-clock enqueue time, for pickup latency


async def _fresh_client(cmd: dict[str, Any]) -> Any:
    client = awa.AsyncClient(cmd["database_url"], max_connections=int(cmd.get("max_connections", 20)))
    await client.migrate()
    # enqueue_many_copy needs the queue-storage engine active; reset=True empties it.
    await client.install_queue_storage(schema=QUEUE_STORAGE_SCHEMA, reset=True)
    return client


def _router(cmd: dict[str, Any]) -> tuple[Any, Any]:
    """(partitioned queue or None, per-job opts function or None)."""
    width = cmd.get("width")
    routing = cmd.get("routing", "none")
    if width is None or routing == "none":
        return None, None
    pq = awa.PartitionedQueue(cmd["queue"], int(width))
    if routing in ("index", "dicts"):  # awa-pg has no batch form: a dict per job either way
        return pq, pq.route_by_index
    if routing == "key":
        return pq, lambda i: pq.route_by_key(f"customer-{i % 1000}")
    raise ValueError(f"unknown routing {routing!r}")


async def _distribution(client: Any) -> dict[str, int]:
    tx = await client.transaction()
    try:
        rows = await tx.fetch_all(
            f"SELECT queue, count(*)::bigint AS n FROM {QUEUE_STORAGE_SCHEMA}.ready_entries GROUP BY queue"
        )
    finally:
        await tx.rollback()
    return {row["queue"]: int(row["n"]) for row in rows}


async def run_producer(cmd: dict[str, Any]) -> dict[str, Any]:
    total, chunk = int(cmd["total"]), int(cmd["chunk"])
    client = await _fresh_client(cmd)
    try:
        pq, route = _router(cmd)
        queue = pq.logical_queue if pq is not None else cmd["queue"]
        inserted = 0
        started = time.perf_counter()
        for lo in range(0, total, chunk):
            hi = min(lo + chunk, total)
            now = time.time()
            jobs = [BenchNoop(seq=i, t=now) for i in range(lo, hi)]
            opts = [route(i) for i in range(lo, hi)] if route is not None else None
            inserted += await client.enqueue_many_copy(jobs, kind=JOB_KIND, queue=queue, opts=opts)
        elapsed = time.perf_counter() - started
        distribution = await _distribution(client)
        return {
            "inserted": inserted,
            "elapsed_s": elapsed,
            "jobs_per_s": inserted / elapsed if elapsed > 0 else None,
            "distribution": distribution,
            "physical_queues": pq.physical_queues if pq is not None else [queue],
        }
    finally:
        await client.close()


async def run_e2e(cmd: dict[str, Any]) -> dict[str, Any]:
    total, chunk = int(cmd["total"]), int(cmd["chunk"])
    width, workers = int(cmd["width"]), int(cmd["workers"])
    probe_jobs, probe_interval = int(cmd.get("probe_jobs", 0)), float(cmd.get("probe_interval_ms", 20)) / 1000
    timeout_s = float(cmd.get("timeout_s", 120))
    client = await _fresh_client(cmd)
    pq = awa.PartitionedQueue(cmd.get("queue", f"e2e_w{width}"), width)
    completed = 0
    drain_target = total
    drained = asyncio.Event()
    probe_latencies: list[float] = []
    probe_done = asyncio.Event()

    async def handle(job: Any) -> None:
        nonlocal completed
        args = job.args
        if args.seq < 0:  # probe job: record pickup latency
            probe_latencies.append(time.time() - args.t)
            if len(probe_latencies) >= probe_jobs:
                probe_done.set()
            return None
        completed += 1
        if completed >= drain_target:
            drained.set()
        return None

    # awa-pg wants one registration per physical queue it will run.
    for queue in pq.physical_queues:
        client.task(BenchNoop, kind=JOB_KIND, queue=queue)(handle)

    result: dict[str, Any] = {"width": width, "workers": workers, "stalled": False}
    try:
        result["enqueue_s"] = await common.enqueue_backlog(client, pq, BenchNoop, JOB_KIND, total, chunk)

        per_partition = max(1, -(-workers // width))
        drain_started = time.perf_counter()
        await client.start(
            pq.queue_configs(per_partition), poll_interval_ms=200, queue_storage_schema=QUEUE_STORAGE_SCHEMA
        )
        try:
            await asyncio.wait_for(drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            result["stalled"] = True
        drain_s = time.perf_counter() - drain_started
        result.update(completed=completed, drain_s=drain_s, jobs_per_s=completed / drain_s if drain_s > 0 else None)

        if probe_jobs and not result["stalled"]:
            await common.send_probes(client, pq, BenchNoop, JOB_KIND, probe_jobs, probe_interval)
            try:
                await asyncio.wait_for(probe_done.wait(), 30)
            except asyncio.TimeoutError:
                result["probe_stalled"] = True
        result.update(common.pickup_figures(probe_latencies))
    finally:
        try:
            await asyncio.wait_for(client.shutdown(timeout_ms=5000), 15)
        except Exception:  # a stalled runtime must not hang the benchmark
            result["shutdown_error"] = True
        try:
            await asyncio.wait_for(client.close(), 10)
        except Exception:
            pass
    return result


def _worker_process(slot: Any, database_url: str, width: int, per_partition: int, max_connections: int) -> None:
    """One awa-pg worker process of a multi-process drain (a spawned child)."""

    async def main() -> None:
        client = awa.AsyncClient(database_url, max_connections=max_connections)
        pq = awa.PartitionedQueue(f"e2e_w{width}", width)

        for queue in pq.physical_queues:
            client.task(BenchNoop, kind=JOB_KIND, queue=queue)(slot.run_job)
        slot.ready()
        await slot.go_signal()
        await client.start(
            pq.queue_configs(per_partition), poll_interval_ms=200, queue_storage_schema=QUEUE_STORAGE_SCHEMA
        )
        try:
            await slot.stop_signal()
        finally:
            try:
                await asyncio.wait_for(client.shutdown(timeout_ms=5000), 15)
            finally:
                await asyncio.wait_for(client.close(), 10)

    asyncio.run(main())


def run_e2e_processes(cmd: dict[str, Any]) -> dict[str, Any]:
    """The drain in several awa-pg worker processes; this process enqueues and times."""
    total, chunk = int(cmd["total"]), int(cmd["chunk"])
    width, workers, processes = int(cmd["width"]), int(cmd["workers"]), int(cmd["processes"])
    probe_jobs, probe_interval = int(cmd.get("probe_jobs", 0)), float(cmd.get("probe_interval_ms", 20)) / 1000
    timeout_s = float(cmd.get("timeout_s", 120))
    per_partition = max(1, -(-workers // (width * processes)))
    # The server's connections are shared by every process.
    per_process_connections = max(20, int(cmd.get("max_connections", 150)) // processes)
    pool = worker_processes.WorkerProcesses(
        _worker_process, (cmd["database_url"], width, per_partition, per_process_connections), processes, probe_jobs
    )
    result: dict[str, Any] = {"width": width, "workers": workers, "processes": processes, "stalled": False}

    async def parent() -> None:
        client = await _fresh_client(cmd)  # resets the queue storage before the children connect
        pq = awa.PartitionedQueue(f"e2e_w{width}", width)
        try:
            await asyncio.get_running_loop().run_in_executor(None, pool.start)
            result["enqueue_s"] = await common.enqueue_backlog(client, pq, BenchNoop, JOB_KIND, total, chunk)
            pool.go()
            drain_s, stalled = await asyncio.get_running_loop().run_in_executor(None, pool.wait_completed, total, timeout_s)
            completed = pool.completed()
            result.update(stalled=stalled, completed=completed, drain_s=drain_s, jobs_per_s=completed / drain_s)
            if probe_jobs and not stalled:
                await common.send_probes(client, pq, BenchNoop, JOB_KIND, probe_jobs, probe_interval)
        finally:
            await client.close()

    try:
        asyncio.run(parent())
        latencies = pool.wait_probes(30) if probe_jobs and not result["stalled"] else []
        if probe_jobs and len(latencies) < probe_jobs and not result["stalled"]:
            result["probe_stalled"] = True
        result.update(common.pickup_figures(latencies))
    finally:
        codes = pool.stop()
        if any(code != 0 for code in codes):
            result["worker_exit_codes"] = codes
    return result


def run_single(cmd: dict[str, Any]) -> dict[str, Any]:
    """Concurrent single inserts (bench/single.py): ``insert`` on an AsyncClient
    from asyncio tasks, or ``insert`` on the sync Client from threads, one pool
    connection per producer."""
    producers, width, keyed = int(cmd["producers"]), int(cmd["width"]), bool(cmd["keyed"])
    duration_s, warmup_s = float(cmd["duration_s"]), float(cmd["warmup_s"])
    pq = awa.PartitionedQueue(cmd.get("queue", "single"), width)
    opts = single_common.routes(pq.route_by_key, pq.route_by_index, keyed)
    n = len(opts)
    kind = single_common.JOB_KIND
    if cmd["mode"] == "threads":
        client = awa.Client(cmd["database_url"], max_connections=producers)
        client.migrate()
        client.install_queue_storage(schema=QUEUE_STORAGE_SCHEMA, reset=True)
        try:
            return single_common.drive_threads(
                lambda i: client.insert({"seq": i}, kind=kind, **opts[i % n]), producers, duration_s, warmup_s
            )
        finally:
            client.close()

    async def go() -> dict[str, Any]:
        client = await _fresh_client({"database_url": cmd["database_url"], "max_connections": producers})
        try:
            return await single_common.drive_async(
                lambda i: client.insert({"seq": i}, kind=kind, **opts[i % n]), producers, duration_s, warmup_s
            )
        finally:
            await client.close()

    return asyncio.run(go())


async def run_migrate(cmd: dict[str, Any]) -> dict[str, Any]:
    client = awa.AsyncClient(cmd["database_url"], max_connections=4)
    await client.migrate()
    await client.close()
    return {"migrated": True}


OPS = {"producer": run_producer, "e2e": run_e2e, "migrate": run_migrate}


def main() -> int:
    raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    cmd = json.loads(raw)
    try:
        if cmd["op"] == "e2e" and int(cmd.get("processes", 1)) > 1:
            result = run_e2e_processes(cmd)
        elif cmd["op"] == "single":
            result = run_single(cmd)
        else:
            result = asyncio.run(OPS[cmd["op"]](cmd))
        result["ok"] = True
    except Exception as exc:  # reported to the harness, never raised through it
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["awa_pg_version"] = _version()
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("awa-pg")
    except Exception:
        return None


if __name__ == "__main__":  # not in spawned worker processes (they import this as __mp_main__)
    sys.exit(main())
