"""``python -m bench --only repartition``: width changes under steady load (ADR 0024).

For each change (default 4 -> 8 and 8 -> 4), on a fresh database: producer
threads insert keyed jobs (each key owned by one producer, so a key's jobs
commit in the order they are numbered), worker threads claim from every
partition of both widths and complete at once, and a leader thread runs the
lift step every 250 ms, as the maintenance leader does. After a steady
phase the width is changed; producers keep going (with their old
PartitionedQueue: the database routes with the new width), then stop, and
the queue is drained.

Figures, read from the database afterwards:

* FIFO violations: jobs first handed out (``attempted_at``) before a job
  of their key with a smaller number;
* lost / duplicated: jobs enqueued but not completed, jobs claimed more
  than once (``attempt > 1``);
* moved keys' extra wait: for jobs of keys that changed partition enqueued
  from the change until it finished, their wait (``attempted_at -
  created_at``) minus the median wait of unmoved keys' jobs in that window
  (p50 and p99);
* unmoved keys' throughput: their hand-outs per second in the window of
  the change (from the change, as long as the steady phase) against the same
  length before it (target >= 0.9).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any

LOGICAL = "rp"
KEYS = 400
PRODUCERS = 2
WORKERS = 2
LIFT_EVERY_S = 0.25

VIOLATIONS = """
SELECT count(*) FROM (
    SELECT attempted_at < max(attempted_at) OVER (PARTITION BY args->>'k' ORDER BY (args->>'n')::int
                                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS bad
    FROM awa.jobs
) AS v WHERE bad
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_one(server: Any, old: int, new: int, steady_s: float) -> dict[str, Any]:
    import psycopg

    import awa
    from awa.routing import PartitionedQueue

    url = server.create_database(server.name(f"rp_{old}_{new}"))
    setup = awa.Client(url)
    setup.migrate()
    pq = setup.partitioned_queue(LOGICAL, old)
    fresh = PartitionedQueue(LOGICAL, new)
    keys = [f"key-{i}" for i in range(KEYS)]
    moved = {k for k in keys if pq.queue_for_key(k) != fresh.queue_for_key(k)}
    span = [LOGICAL if i == 0 else f"{LOGICAL}__p{i}" for i in range(max(old, new))]
    stop_producing = threading.Event()
    stop_all = threading.Event()
    enqueued = [0] * PRODUCERS

    def produce(index: int) -> None:
        with awa.Client(url) as client:
            mine = keys[index::PRODUCERS]
            n = 0
            while not stop_producing.is_set():
                key = mine[n % len(mine)]
                client.insert({"k": key, "n": n}, kind="rp", queue=pq.queue_for_key(key), ordering_key=key)
                n += 1
                enqueued[index] += 1

    def work() -> None:
        with awa.Client(url) as client:
            while not stop_all.is_set():
                jobs = client.claim(span, 20)
                if not jobs:
                    time.sleep(0.005)
                    continue
                client.complete_many([(j.id, j.run_lease) for j in jobs])

    def lift() -> None:
        with awa.Client(url) as client:
            while not stop_all.is_set():
                client.lift_fences(LOGICAL)
                time.sleep(LIFT_EVERY_S)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(PRODUCERS)]
    threads += [threading.Thread(target=work) for _ in range(WORKERS)] + [threading.Thread(target=lift)]
    for t in threads:
        t.start()
    time.sleep(steady_s)
    started = time.monotonic()
    done = setup.repartition(LOGICAL, new)
    change_ms = (time.monotonic() - started) * 1000
    time.sleep(steady_s)
    stop_producing.set()
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            left = conn.execute("SELECT count(*) FROM awa.jobs WHERE state <> 'completed'").fetchone()[0]
            if not setup.repartition_status(LOGICAL)["in_progress"] and left == 0:
                break
            time.sleep(0.2)
    stop_all.set()
    for t in threads:
        t.join()
    res = _measure(url, moved, done, change_ms, steady_s, sum(enqueued))
    setup.close()
    server.drop_database(server.name(f"rp_{old}_{new}"))
    res.update(old=old, new=new, moved_keys=len(moved), keys=KEYS)
    return res


def _measure(url: str, moved: set[str], done: dict[str, Any], change_ms: float, steady_s: float,
             enqueued: int) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        violations = conn.execute(VIOLATIONS).fetchone()[0]
        total, completed, dup = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE attempt > 1) "
            "FROM awa.jobs").fetchone()
        started, finished = conn.execute(
            "SELECT started_at, finished_at FROM awa.partition_epochs WHERE epoch = %s", [done["epoch"]]).fetchone()
        rows = conn.execute(
            "SELECT args->>'k', extract(epoch FROM created_at - %(s)s)::float8, "
            "extract(epoch FROM attempted_at - created_at)::float8, extract(epoch FROM attempted_at - %(s)s)::float8 "
            "FROM awa.jobs", {"s": started}).fetchall()
    window_end = (finished - started).total_seconds() if finished else None
    moved_waits, unmoved_waits = [], []
    for key, created, wait, _handed in rows:
        if 0 <= created and (window_end is None or created <= window_end):
            (moved_waits if key in moved else unmoved_waits).append(wait)
    base = statistics.median(unmoved_waits) if unmoved_waits else 0.0
    extra = [w - base for w in moved_waits]
    before = sum(1 for k, _c, _w, h in rows if k not in moved and -steady_s <= h < 0)
    during = sum(1 for k, _c, _w, h in rows if k not in moved and 0 <= h < steady_s)
    return {
        "enqueued": enqueued, "rows": total, "completed": completed, "lost": enqueued - completed,
        "duplicated": dup, "fifo_violations": violations, "change_ms": change_ms,
        "finished_after_s": window_end, "moved_jobs_in_window": len(moved_waits),
        "extra_wait_p50_ms": None if not extra else _pct(extra, 0.5) * 1000,
        "extra_wait_p99_ms": None if not extra else _pct(extra, 0.99) * 1000,
        "unmoved_per_s_before": before / steady_s, "unmoved_per_s_during": during / steady_s,
        "unmoved_ratio": during / before if before else None,
    }


def main(args: Any) -> int:
    from bench.harness import durability_label, open_server, write_results

    steady_s = 1.5 if args.quick else 4.0
    rounds = args.rounds or 1
    changes = [(4, 8), (8, 4)]
    runs: list[dict[str, Any]] = []
    with open_server(args.database_url, durable=not args.no_durability) as server:
        label = durability_label(server.describe())
        log(f"repartition: PostgreSQL {label}")
        for rnd in range(rounds):
            for old, new in changes:
                res = run_one(server, old, new, steady_s)
                res["round"] = rnd
                runs.append(res)
                log(f"repartition r{rnd + 1} {old}->{new}: {res}")
    lines = ["| change | jobs | lost | duplicated | FIFO violations | change ms | finished after s | "
             "moved jobs waited | extra wait p50 / p99 ms | unmoved jobs/s before / during | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        def f(value: Any, fmt: str = ".0f") -> str:
            return "-" if value is None else format(value, fmt)
        lines.append(
            f"| {r['old']} -> {r['new']} | {r['enqueued']} | {r['lost']} | {r['duplicated']} | {r['fifo_violations']} | "
            f"{f(r['change_ms'], '.1f')} | {f(r['finished_after_s'], '.2f')} | {r['moved_jobs_in_window']} | "
            f"{f(r['extra_wait_p50_ms'])} / {f(r['extra_wait_p99_ms'])} | "
            f"{f(r['unmoved_per_s_before'])} / {f(r['unmoved_per_s_during'])} | {f(r['unmoved_ratio'], '.3f')} |")
    print(f"Online repartitioning, {PRODUCERS} producer and {WORKERS} worker threads, {KEYS} keys, "
          f"{steady_s:.1f} s before and after the change, {label}:\n")
    print("\n".join(lines))
    path = write_results({"repartition": {"runs": runs}}, args.results_dir)
    log(f"bench: results in {path}")
    ok = all(r["lost"] == 0 and r["duplicated"] == 0 and r["fifo_violations"] == 0 for r in runs)
    return 0 if ok else 1
