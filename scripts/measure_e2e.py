"""End-to-end worker throughput and pickup latency for 1, 2, 4 and 8 partitions.

For each width: a fresh migrated database; a producer *process* enqueues
``--jobs`` no-op jobs (COPY batches, round robin over the partitions of one
``PartitionedQueue``) while this process runs the worker runtime on
``queue_configs(...)`` output. Figures come from the job rows themselves:

* jobs/s    = jobs / (last finalized_at - first created_at)
* pickup    = attempted_at - created_at per job (p50 / p99), server clock

Usage:
    python -m scripts.measure_e2e [--jobs 20000] [--widths 1,2,4,8] [--workers 64]
                                  [--processes 1] [--batch 500] [--rate 0]
    DATABASE_URL=... to use an existing server; otherwise an embedded PostgreSQL 18.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from awa.routing import PartitionedQueue
from awa.storage.migrate import migrate


@dataclass
class Noop:
    n: int


def _with_db(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


def _fresh_database(server_url: str) -> str:
    name = f"awa_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_db(server_url, name)
    with psycopg.connect(url) as conn:
        migrate(conn, "awa")
    return url


def _drop_database(server_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _produce(url: str, logical: str, partitions: int, jobs: int, batch: int, rate: float, start_at: float) -> None:
    from awa.client import Client

    pq = PartitionedQueue(logical, partitions)
    client = Client(url, max_connections=2)
    while time.time() < start_at:
        time.sleep(0.001)
    sent = 0
    t0 = time.monotonic()
    while sent < jobs:
        n = min(batch, jobs - sent)
        opts = [{"queue": pq.queue_for_index((sent + i) % partitions)} for i in range(n)]
        client.enqueue_many_copy([Noop(sent + i) for i in range(n)], queue=logical, opts=opts)
        sent += n
        if rate > 0:  # pace the producer: sleep until this batch is due
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    client.close()


def _work(url: str, logical: str, partitions: int, per_partition: int, jobs: int, ready: Any) -> None:
    asyncio.run(_work_async(url, logical, partitions, per_partition, jobs, ready))


async def _work_async(url: str, logical: str, partitions: int, per_partition: int, jobs: int, ready: Any) -> None:
    from awa.client import AsyncClient

    pq = PartitionedQueue(logical, partitions)
    client = AsyncClient(url)

    @client.task(Noop, queue=pq.physical_queues[0])
    async def noop(job):
        return None

    await client.start(pq.queue_configs(max_workers_per_partition=per_partition, claim_batch_size=256))
    if ready is not None:
        ready.set()
    # Stop when the whole run is done (all processes): poll the count cheaply.
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            await asyncio.sleep(0.05)
            cur = await conn.execute("SELECT count(*) FROM awa.jobs WHERE state = 'completed'")
            if (await cur.fetchone())[0] >= jobs:
                break
    await client.shutdown()
    await client.close()


def _figures(url: str) -> tuple[int, float, float, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            SELECT count(*),
                   extract(epoch FROM max(finalized_at) - min(created_at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM attempted_at - created_at)),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM attempted_at - created_at))
            FROM awa.jobs WHERE state = 'completed'
            """
        ).fetchone()
    return int(row[0]), float(row[1]), float(row[2]), float(row[3])


def measure(server_url: str, width: int, args: argparse.Namespace) -> dict[str, float]:
    url = _fresh_database(server_url)
    logical = "e2e"
    try:
        ctx = mp.get_context("spawn")
        per_partition = max(1, args.workers // width)
        start_at = time.time() + 3.0  # everyone starts together once the worker is up
        workers = []
        readies = []
        for _ in range(args.processes):
            ready = ctx.Event()
            p = ctx.Process(target=_work, args=(url, logical, width, per_partition, args.jobs, ready))
            p.start()
            workers.append(p)
            readies.append(ready)
        for ready in readies:
            ready.wait(30)
        producer = ctx.Process(target=_produce, args=(url, logical, width, args.jobs, args.batch, args.rate, start_at))
        producer.start()
        producer.join()
        for p in workers:
            p.join(300)
            if p.exitcode != 0:
                raise SystemExit(f"worker process failed (exit {p.exitcode})")
        done, seconds, p50, p99 = _figures(url)
        if done != args.jobs:
            raise SystemExit(f"only {done} of {args.jobs} jobs completed")
        return {"jobs_per_s": done / seconds, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "seconds": seconds}
    finally:
        _drop_database(server_url, url)


def _table(server_url: str, widths: list[int], args: argparse.Namespace) -> None:
    print(f"{'partitions':>10} {'jobs/s':>10} {'pickup p50 ms':>14} {'pickup p99 ms':>14} {'seconds':>8}")
    for width in widths:
        r = measure(server_url, width, args)
        print(f"{width:>10} {r['jobs_per_s']:>10.0f} {r['p50_ms']:>14.1f} {r['p99_ms']:>14.1f} {r['seconds']:>8.2f}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--widths", default="1,2,4,8")
    parser.add_argument("--workers", type=int, default=64, help="max_workers summed over the partitions")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--batch", type=int, default=500, help="jobs per producer COPY batch")
    parser.add_argument("--rate", type=float, default=0.0, help="producer jobs/s (0 = as fast as it can)")
    parser.add_argument("--latency-rate", type=float, default=1000.0,
                        help="second table: pickup latency with the producer paced at this rate (0 = skip)")
    parser.add_argument("--latency-jobs", type=int, default=5000)
    args = parser.parse_args(argv)

    embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        from awa.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres().start()
        server_url = embedded.url
    try:
        widths = [int(w) for w in args.widths.split(",")]
        print(f"e2e: {args.jobs} no-op jobs, producer process (COPY x{args.batch}"
              f"{', %.0f/s' % args.rate if args.rate else ', unthrottled'}) + {args.processes} worker process(es), "
              f"{args.workers} workers total (split over the partitions), python {sys.version.split()[0]}")
        _table(server_url, widths, args)
        if args.latency_rate > 0:
            paced = argparse.Namespace(**{**vars(args), "jobs": args.latency_jobs, "rate": args.latency_rate,
                                          "batch": max(1, int(args.latency_rate // 100))})
            print(f"\npickup latency below saturation: {paced.jobs} jobs paced at {paced.rate:.0f}/s "
                  f"(COPY x{paced.batch} every ~10 ms)")
            _table(server_url, widths, paced)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
