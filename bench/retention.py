"""``python -m bench --only retention``: retention at a million jobs (issue 22).

Three parts, on one scratch database each, ours only (awa-pg is not involved):

1. **Reads with 1M rows stored.** ``--stored`` finished jobs (default 1M: 99.9 %
   completed, 0.1 % failed, over 8 partitions) are written by one INSERT ...
   SELECT, plus a backlog of available jobs enqueued through the client; then
   ``queue_stats()`` and keyset pages of ``list_jobs`` are timed (median of
   11 calls each), before and after the terminal counts are rolled up.
2. **Steady state.** ``--jobs`` jobs (default 1M) are produced and worked in one
   process with retention on (completed jobs pruned after
   ``--retention-seconds``); every ``--sample-every`` seconds the jobs table's
   live and dead rows and its size, and the lane bookkeeping rows, are printed.
3. **Throughput with and without pruning, same run.** ``--rounds`` pairs of
   rounds, the order alternating: each round produces ``--round-jobs`` jobs
   while the worker drains them; "with" rounds run the worker with retention 0
   so it prunes the previous rounds' rows meanwhile. Producer jobs/s (enqueue
   calls only) and end-to-end jobs/s (first enqueue to last completion).

Figures go to stdout (markdown) and bench/results/retention-*.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import RESULTS_DIR, durability_label, machine_info, open_server
from bench.producer import JOB_KIND, BenchNoop, open_async_client, open_pool

WIDTH = 8
CHUNK = 2000
WORKERS_PER_PARTITION = 32


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _migrated_db(server: Any, name: str) -> str:
    from awa.storage.migrate import migrate

    url = server.create_database(server.name(name))
    with psycopg.connect(url) as conn:
        migrate(conn, "awa")
    return url


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# --- part 1: reads with many rows stored -----------------------------------------


def _timed(call: Any, n: int = 11) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(n):
        started = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - started)
    return _ms(samples), result


def reads(server: Any, stored: int, backlog: int) -> dict[str, Any]:
    from awa.client import Client
    from awa.routing import PartitionedQueue

    url = _migrated_db(server, "bench_ret_reads")
    pq = PartitionedQueue("orders", WIDTH)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO awa.queues (name) SELECT unnest(%s::text[])", [pq.physical_queues])
        started = time.perf_counter()
        conn.execute(
            """
            INSERT INTO awa.jobs (queue, kind, args, state, attempt, run_at, created_at, attempted_at, finalized_at,
                                  errors)
            SELECT (%(queues)s::text[])[1 + i %% %(width)s], 'charge', jsonb_build_object('order', i),
                   CASE WHEN i %% 1000 = 0 THEN 'failed' ELSE 'completed' END::awa.job_state, 1,
                   now() - make_interval(secs => (%(n)s - i) / 20.0), now() - make_interval(secs => (%(n)s - i) / 20.0),
                   now() - make_interval(secs => (%(n)s - i) / 20.0), now() - make_interval(secs => (%(n)s - i) / 20.0),
                   CASE WHEN i %% 1000 = 0 THEN '[{"attempt": 1, "error": "ValueError: declined"}]'::jsonb END
            FROM generate_series(1, %(n)s) AS i
            """,
            {"queues": pq.physical_queues, "width": WIDTH, "n": stored},
        )
        insert_s = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE awa.jobs")
    out: dict[str, Any] = {"stored": stored, "backlog": backlog, "insert_s": insert_s}
    with Client(url, max_connections=2) as client:
        for lo in range(0, backlog, CHUNK):
            n = min(CHUNK, backlog - lo)
            client.enqueue_many_copy([{"i": i} for i in range(lo, lo + n)], kind="charge", queue="orders",
                                     opts=[pq.route_by_index(i) for i in range(lo, lo + n)])
        out["queue_stats_ms_before_rollup"], _ = _timed(client.queue_stats, 3)
        client.rollup_terminal_counts(lag_seconds=0)
        client.rollup_terminal_counts(lag_seconds=0)  # the first call creates the count rows
        out["queue_stats_ms"], stats = _timed(client.queue_stats)
        out["stats_completed"] = sum(s.completed for s in stats)
        out["stats_failed"] = sum(s.failed for s in stats)
        first = client.list_jobs_page(limit=100)
        deep = client.list_jobs_page(limit=100, cursor=str(stored // 2))
        pages = {
            "newest 100": lambda: client.list_jobs_page(limit=100),
            "page 2 (cursor)": lambda: client.list_jobs_page(limit=100, cursor=first.next_cursor),
            "page at the middle (cursor)": lambda: client.list_jobs_page(limit=100, cursor=deep.next_cursor),
            "state=completed": lambda: client.list_jobs_page(state="completed", limit=100),
            "state=failed": lambda: client.list_jobs_page(state="failed", limit=100),
            "state=failed, queue=orders__p3": lambda: client.list_jobs_page(state="failed", queue="orders__p3",
                                                                            limit=100),
            "state=available": lambda: client.list_jobs_page(state="available", limit=100),
            "queue=orders__p5": lambda: client.list_jobs_page(queue="orders__p5", limit=100),
            "kind=charge": lambda: client.list_jobs_page(kind="charge", limit=100),
        }
        out["list_jobs_ms"] = {name: _timed(call)[0] for name, call in pages.items()}
    return out


# --- parts 2 and 3: producing and working with retention -------------------------


def _sizes(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "WHERE schemaname = 'awa' AND relname IN ('jobs', 'lane_segments', 'claim_heads', 'enqueue_heads', "
            "'terminal_counts')"
        ).fetchall()
    return {name: {"live": live, "dead": dead, "bytes": size} for name, live, dead, size in rows}


async def _produce_and_work(url: str, total: int, retention_s: float | None, sample_every: float | None,
                            samples: list[dict[str, Any]] | None, start_at: int = 0) -> dict[str, Any]:
    """Produce ``total`` jobs in chunks while the worker drains them; rates and timings."""
    from awa.routing import PartitionedQueue

    client = open_async_client(url, max_connections=24)
    await open_pool(client)
    pq = PartitionedQueue("orders", WIDTH)
    done = 0
    drained = asyncio.Event()

    async def handle(job: Any) -> None:
        nonlocal done
        done += 1
        if done >= total:
            drained.set()

    for queue in pq.physical_queues:
        client.task(BenchNoop, kind=JOB_KIND, queue=queue)(handle)
    options: dict[str, Any] = {"terminal_count_rollup_interval_ms": 1000}
    if retention_s is not None:
        options.update(completed_retention_hours=retention_s / 3600, failed_retention_hours=retention_s / 3600,
                       cleanup_interval_ms=1000, cleanup_batch_size=5000)
    await client.start(pq.queue_configs(WORKERS_PER_PARTITION), **options)
    enqueue_s = 0.0
    started = time.perf_counter()
    next_sample = started
    try:
        for lo in range(0, total, CHUNK):
            n = min(CHUNK, total - lo)
            now = time.time()
            jobs = [BenchNoop(seq=start_at + i, t=now) for i in range(lo, lo + n)]
            opts = pq.route_by_indexes(range(start_at + lo, start_at + lo + n))
            t0 = time.perf_counter()
            await client.enqueue_many_copy(jobs, kind=JOB_KIND, queue="orders", opts=opts)
            enqueue_s += time.perf_counter() - t0
            # Keep the backlog bounded (a steady state, not one huge queue).
            while lo + n - done > 20 * CHUNK:
                await asyncio.sleep(0.01)
            if samples is not None and sample_every and time.perf_counter() >= next_sample:
                samples.append(await asyncio.to_thread(_sample, url, started, lo + n, done, client))
                next_sample += sample_every
        await asyncio.wait_for(drained.wait(), 600)
        elapsed = time.perf_counter() - started
        runtime = client.worker_runtime
        pruned = dict(runtime.retention.deleted) if runtime is not None else {}
    finally:
        await client.shutdown(timeout_ms=5000)
        await client.close()
    return {"jobs": total, "producer_jobs_per_s": total / enqueue_s, "e2e_jobs_per_s": total / elapsed,
            "elapsed_s": elapsed, "pruned": pruned}


def _sample(url: str, started: float, produced: int, done: int, client: Any) -> dict[str, Any]:
    sizes = _sizes(url)
    jobs = sizes.get("jobs", {})
    row = {"t_s": round(time.perf_counter() - started, 1), "produced": produced, "completed": done,
           "jobs_live": jobs.get("live"), "jobs_dead": jobs.get("dead"),
           "jobs_mb": round((jobs.get("bytes") or 0) / 2**20, 1),
           "segments_live": sizes.get("lane_segments", {}).get("live"),
           "segments_dead": sizes.get("lane_segments", {}).get("dead"),
           "heads_dead": (sizes.get("claim_heads", {}).get("dead") or 0) + (sizes.get("enqueue_heads", {}).get("dead") or 0)}
    log("  t={t_s:>6}s produced {produced:>8} completed {completed:>8}  jobs live {jobs_live} dead {jobs_dead} "
        "{jobs_mb} MB  segments live {segments_live} dead {segments_dead}  heads dead {heads_dead}".format(**row))
    return row


def steady_state(server: Any, total: int, retention_s: float, sample_every: float) -> dict[str, Any]:
    url = _migrated_db(server, "bench_ret_steady")
    samples: list[dict[str, Any]] = []
    log(f"retention: steady state, {total} jobs, completed jobs pruned after {retention_s:g}s")
    result = asyncio.run(_produce_and_work(url, total, retention_s, sample_every, samples))
    result["samples"] = samples
    result["final"] = _sizes(url)
    return result


def paired_throughput(server: Any, rounds: int, round_jobs: int) -> dict[str, Any]:
    url = _migrated_db(server, "bench_ret_pairs")
    runs: list[dict[str, Any]] = []
    seq = 0
    for rnd in range(rounds):
        order = ("without", "with") if rnd % 2 == 0 else ("with", "without")
        for mode in order:
            res = asyncio.run(_produce_and_work(url, round_jobs, 0.0 if mode == "with" else None, None, None, seq))
            seq += round_jobs
            res.update(round=rnd, mode=mode, stored_after=_sizes(url).get("jobs", {}).get("live"))
            runs.append(res)
            log(f"  round {rnd + 1} {mode:>7} pruning: producer {res['producer_jobs_per_s']:,.0f}/s, "
                f"end to end {res['e2e_jobs_per_s']:,.0f}/s, pruned {sum(res['pruned'].values())}")
    out: dict[str, Any] = {"runs": runs}
    for key in ("producer_jobs_per_s", "e2e_jobs_per_s"):
        ratios = []
        for rnd in range(rounds):
            pair = {r["mode"]: r[key] for r in runs if r["round"] == rnd}
            ratios.append(pair["with"] / pair["without"])
        out[f"{key}_ratio_median"] = statistics.median(ratios)
        out[f"{key}_ratios"] = ratios
        out[f"{key}_with_median"] = statistics.median(r[key] for r in runs if r["mode"] == "with")
        out[f"{key}_without_median"] = statistics.median(r[key] for r in runs if r["mode"] == "without")
    return out


# --- report ----------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines = [f"## Retention (load {results['load_before']} at start, {results['load_after']} at the end)", "",
             f"PostgreSQL {results['server'].get('server_version')}: {durability_label(results['server'])}.", ""]
    r = results.get("reads")
    if r:
        lines += [f"Reads with {r['stored']:,} finished jobs and {r['backlog']:,} available ones stored:", "",
                  "| read | median ms |", "|---|---|",
                  f"| queue_stats, before the first roll-up | {r['queue_stats_ms_before_rollup']:.1f} |",
                  f"| queue_stats | {r['queue_stats_ms']:.1f} |"]
        lines += [f"| list_jobs_page {name} | {ms:.1f} |" for name, ms in r["list_jobs_ms"].items()]
        lines.append("")
    s = results.get("steady")
    if s:
        lines += [f"Steady state: {s['jobs']:,} jobs in {s['elapsed_s']:.0f} s ({s['e2e_jobs_per_s']:,.0f}/s), "
                  f"pruned {s['pruned']}", "", "| t s | produced | completed | jobs live | jobs dead | jobs MB | "
                  "segments live/dead | heads dead |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {x['t_s']} | {x['produced']} | {x['completed']} | {x['jobs_live']} | {x['jobs_dead']} | "
                  f"{x['jobs_mb']} | {x['segments_live']}/{x['segments_dead']} | {x['heads_dead']} |"
                  for x in s["samples"]]
        lines.append("")
    p = results.get("pairs")
    if p:
        lines += ["Throughput with pruning running / without (same run, paired rounds):", "",
                  "| | without, median | with, median | ratio (median of pairs) | ratios |", "|---|---|---|---|---|"]
        for key, label in (("producer_jobs_per_s", "producer jobs/s"), ("e2e_jobs_per_s", "end-to-end jobs/s")):
            lines.append(f"| {label} | {p[key + '_without_median']:,.0f} | {p[key + '_with_median']:,.0f} | "
                         f"{p[key + '_ratio_median']:.3f} | {', '.join(f'{x:.2f}' for x in p[key + '_ratios'])} |")
    return "\n".join(lines)


def main(args: Any) -> int:
    results: dict[str, Any] = {"machine": machine_info(), "load_before": os.getloadavg()[0]}
    with open_server(args.database_url, durable=not args.no_durability) as server:
        results["server"] = server.describe()
        if "reads" in args.retention_parts:
            log(f"retention: reads with {args.stored:,} stored rows")
            results["reads"] = reads(server, args.stored, args.backlog)
        if "steady" in args.retention_parts:
            results["steady"] = steady_state(server, args.retention_jobs, args.retention_seconds, args.sample_every)
        if "pairs" in args.retention_parts:
            log(f"retention: {args.pair_rounds} paired rounds of {args.round_jobs} jobs")
            results["pairs"] = paired_throughput(server, args.pair_rounds, args.round_jobs)
    results["load_after"] = os.getloadavg()[0]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = Path(RESULTS_DIR) / f"retention-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    log(f"results: {path}")
    return 0
