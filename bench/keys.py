"""``python -m bench --only keys``: per-key concurrency end to end (ADR 0020).

For each width W (default 1, 2, 4, 8) the same N no-op jobs are drained by two
worker processes serving every partition, in three scenarios, rotated each
round:

* ``no key``: unkeyed jobs round robin over the partitions (the baseline);
* ``1000 keys``: ordering keys over 1,000 keys, a policy ``max_in_flight=1``
  with ``from_ordering_key`` (one job per key at a time);
* ``hot key``: the same policy, half the jobs on one key, the rest over 999.

Figures: jobs/s of the whole drain; for ``hot key`` the other keys' jobs/s
(their jobs / the time their last one completed) against their share of the
``no key`` run (half its jobs/s); that run ends when the other keys are done
(the hot key's serial tail is not measured). Violations are counted from the database by
a sampler during every drain: samples in which some key had more running
jobs than its policy allows. It runs in the ``no key`` drain too (finding
nothing), so every scenario carries the same measuring load.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import threading
import time
from typing import Any

KIND = "bench_key"
WORKERS = 64  # in all, over the processes
HOT_SHARE = 0.5
# The running jobs are read first and counted, so the sampler reads them in
# the no-key drain too (a join with no policy would skip them), and read
# through their index (SAMPLER_SETTINGS): on a fresh table the planner chose a
# sequential scan of every job in the keyed drains, 1.4 ms a sample against
# next to nothing without a policy, an unequal measuring load.
VIOLATIONS = """
WITH r AS MATERIALIZED (
    SELECT j.queue, j.concurrency_key, j.ordering_key FROM awa.jobs AS j WHERE j.state = 'running'
)
SELECT (SELECT count(*) FROM r) AS running, (SELECT count(*) FROM (
    SELECT 1 FROM r
    JOIN awa.key_policies AS p ON p.name = awa.logical_queue(r.queue)
    WHERE coalesce(r.concurrency_key, CASE WHEN p.from_ordering_key THEN r.ordering_key END) IS NOT NULL
    GROUP BY coalesce(r.concurrency_key, CASE WHEN p.from_ordering_key THEN r.ordering_key END), p.max_in_flight
    HAVING count(*) > p.max_in_flight
) AS v) AS violations
"""
SAMPLER_SETTINGS = "SET enable_seqscan = off"


def violations_now(conn: Any) -> tuple[int, int]:
    """(running jobs, keys above their limit) now, on the sampler's connection."""
    running, over = conn.execute(VIOLATIONS, prepare=True).fetchone()
    return int(running), int(over)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _child(index: int, url: str, queue: str, width: int, per_process: int, counters: Any, ready: Any, go: Any,
           stop: Any) -> None:
    async def main() -> None:
        from awa import PartitionedQueue
        from bench.producer import _close, open_async_client, open_pool

        client = open_async_client(url)
        await open_pool(client)
        pq = PartitionedQueue(queue, width)

        async def handle(job: Any) -> None:
            counters[2 * index] += 1
            if not job.args.get("hot"):
                counters[2 * index + 1] += 1

        for q in pq.physical_queues:
            client.task(KIND, queue=q)(handle)
        ready.release()
        while not go.is_set():
            await asyncio.sleep(0.005)
        await client.start(pq.queue_configs(max(1, per_process // width)), poll_interval_ms=100)
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await client.shutdown(timeout_ms=5000)
        await _close(client)

    asyncio.run(main())


def _jobs(scenario: str, total: int) -> tuple[list[dict[str, Any]], list[str | None]]:
    if scenario == "no key":
        return [{"n": i} for i in range(total)], [None] * total
    keys: list[str | None] = []
    args = []
    for i in range(total):
        hot = scenario == "hot key" and i % 2 == 0
        keys.append("hot" if hot else f"k{i % 999 if scenario == 'hot key' else i % 1000}")
        args.append({"n": i, "hot": hot})
    return args, keys


def run_one(server: Any, scenario: str, width: int, total: int, processes: int, timeout_s: float) -> dict[str, Any]:
    import psycopg

    from awa import Client, PartitionedQueue

    name = server.name(f"keys_w{width}")
    url = server.create_database(name)
    queue = "keys"
    with Client(url) as client:
        client.migrate()
        pq = PartitionedQueue(queue, width)
        if scenario != "no key":
            client.create_key_policy(queue, 1, from_ordering_key=True)
        args, keys = _jobs(scenario, total)
        for lo in range(0, total, 2000):
            hi = min(lo + 2000, total)
            if scenario == "no key":
                opts = [pq.route_by_index(i) for i in range(lo, hi)]
            else:
                opts = list(pq.route_by_keys(keys[lo:hi]))
            client.enqueue_many_copy(args[lo:hi], kind=KIND, queue=queue, opts=opts)
    others = sum(1 for a in args if not a.get("hot"))

    ctx = mp.get_context("spawn")
    counters = ctx.RawArray("q", 2 * processes)
    ready, go, stop = ctx.Semaphore(0), ctx.Event(), ctx.Event()
    children = [ctx.Process(target=_child, args=(i, url, queue, width, WORKERS // processes, counters, ready, go,
                                                 stop), daemon=True) for i in range(processes)]
    out: dict[str, Any] = {"scenario": scenario, "width": width, "jobs": total, "processes": processes}
    samples = [0, 0]  # samples taken, samples with a violation
    sampling = threading.Event()

    def sampler() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SAMPLER_SETTINGS)
            while not sampling.is_set():
                samples[0] += 1
                if violations_now(conn)[1]:
                    samples[1] += 1
                time.sleep(0.02)

    watch = threading.Thread(target=sampler)
    try:
        for child in children:
            child.start()
        for _ in children:
            if not ready.acquire(timeout=60):
                raise RuntimeError("worker processes not ready")
        watch.start()
        started = time.perf_counter()
        go.set()
        others_done_s = None
        while True:
            now = time.perf_counter() - started
            done = sum(counters[0::2])
            if others_done_s is None and sum(counters[1::2]) >= others:
                others_done_s = now
            # hot key: the summary uses the other keys' rate only, and the hot
            # key's own serial tail would take minutes
            if done >= total or now > timeout_s or (scenario == "hot key" and others_done_s is not None):
                break
            time.sleep(0.002)
        out.update(drain_s=now, completed=done, stalled=done < total and others_done_s is None, jobs_per_s=done / now,
                   others_jobs_per_s=(others / others_done_s) if others_done_s else None)
    finally:
        sampling.set()
        if watch.is_alive():
            watch.join()
        stop.set()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        out.update(samples=samples[0], violation_samples=samples[1])
        server.drop_database(name)
    return out


def main(args: Any) -> int:
    from bench.harness import durability_label, open_server, write_results

    quick = args.quick
    total = args.jobs  # parse_args: 20000, quick 2000
    rounds = args.rounds or (1 if quick else 3)
    widths = list(args.widths)  # parse_args: 1,2,4,8
    scenarios = ["no key", "1000 keys", "hot key"]
    runs: list[dict[str, Any]] = []
    with open_server(args.database_url, durable=not args.no_durability) as server:
        log(f"keys: PostgreSQL {durability_label(server.describe())}")
        for rnd in range(rounds):
            for width in widths:
                shift = rnd % len(scenarios)
                for scenario in scenarios[shift:] + scenarios[:shift]:
                    res = run_one(server, scenario, width, total, 2, timeout_s=300)
                    res["round"] = rnd
                    runs.append(res)
                    others = res.get("others_jobs_per_s")
                    log(f"keys r{rnd + 1} w{width} {scenario}: {res.get('jobs_per_s', 0):.0f} jobs/s"
                        + (f", others {others:.0f} jobs/s" if scenario == "hot key" and others else "")
                        + f", violations {res.get('violation_samples')}/{res.get('samples')}")
    rows = []
    for width in widths:
        def med(scenario: str, field: str) -> float | None:
            values = [r[field] for r in runs if r["width"] == width and r["scenario"] == scenario
                      and r.get(field) is not None]
            return statistics.median(values) if values else None

        base = med("no key", "jobs_per_s")
        keyed = med("1000 keys", "jobs_per_s")
        others = med("hot key", "others_jobs_per_s")
        rows.append({
            "width": width, "no_key": base, "keys_1000": keyed, "hot_others": others,
            "ratio_1000_keys": keyed / base if base and keyed else None,
            "ratio_hot_others_to_share": others / (base * (1 - HOT_SHARE)) if base and others else None,
            "violation_samples": sum(r["violation_samples"] for r in runs if r["width"] == width),
            "samples": sum(r["samples"] for r in runs if r["width"] == width),
        })
    lines = ["| width | no key jobs/s | 1000 keys jobs/s | ratio | hot key: others jobs/s | vs their share | "
             "violations (samples) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['width']} | {r['no_key'] or 0:.0f} | {r['keys_1000'] or 0:.0f} | "
                     f"{r['ratio_1000_keys'] or 0:.3f} | {r['hot_others'] or 0:.0f} | "
                     f"{r['ratio_hot_others_to_share'] or 0:.3f} | {r['violation_samples']} ({r['samples']}) |")
    print(f"Per-key concurrency, {total} jobs, 2 worker processes, {WORKERS} workers, {rounds} round(s), "
          "medians:\n")
    print("\n".join(lines))
    path = write_results({"keys": {"runs": runs, "summary": rows}})
    log(f"bench: results in {path}")
    return 0 if all(r["violation_samples"] == 0 for r in rows) else 1
