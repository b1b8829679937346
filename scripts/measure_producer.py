"""Quick producer measurement: jobs/s for COPY enqueue, single queue vs 4 partitions.

    .venv/bin/python scripts/measure_producer.py [--jobs 20000] [--chunk 2000] [--rounds 5]

Uses DATABASE_URL when set, otherwise a throwaway embedded PostgreSQL 18.
Both shapes run in the same process against the same server, interleaved
round by round, so the ratio is not skewed by drift on a shared machine.
The partitioned shape is ONE ``enqueue_many_copy`` call per chunk whose
per-job ``opts`` route each job to one of 4 physical queues. The keyed shape
is the same with ordering keys: keys ``customer-{i % 1000}``, opts from
``PartitionedQueue(..., 4).route_by_keys(keys)`` (``{"queue", "ordering_key"}``
per job).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import psycopg
from psycopg import sql

from awa.client import Client
from awa.db.url import database_url_from_env
from awa.routing import PartitionedQueue
from awa.storage.migrate import migrate


def _fresh_database(server_url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"awa_measure_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo(**params)
    with psycopg.connect(url) as conn:
        migrate(conn, "awa")
    return url


def _payloads(n: int, round_no: int) -> list[dict]:
    return [{"seq": i, "round": round_no, "payload": "x" * 32, "user_id": i * 7} for i in range(n)]


def _run(client: Client, jobs: list[dict], chunk: int, opts: list[dict] | None, queue: str) -> float:
    start = time.perf_counter()
    for i in range(0, len(jobs), chunk):
        part_opts = opts[i : i + chunk] if opts is not None else None
        client.enqueue_many_copy(jobs[i : i + chunk], kind="bench_job", queue=queue, opts=part_opts)
    return len(jobs) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)

    embedded = None
    server = database_url_from_env()
    if server is None:
        from awa.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres().start()
        server = embedded.url
    try:
        url = _fresh_database(server)
        pq = PartitionedQueue("bench_parts", 4)
        kq = PartitionedQueue("bench_keyed", 4)
        with Client(url, max_connections=2) as client:
            # Warm-up: registers queues and lanes, fills caches, JITs nothing.
            _run(client, _payloads(args.chunk, -1), args.chunk, None, "bench_single")
            warm_opts = [pq.route_by_index(i) for i in range(args.chunk)]
            _run(client, _payloads(args.chunk, -1), args.chunk, warm_opts, pq.logical_queue)
            warm_keyed = kq.route_by_keys([f"customer-{i % 1000}" for i in range(args.chunk)])
            _run(client, _payloads(args.chunk, -1), args.chunk, warm_keyed, kq.logical_queue)

            opts = [pq.route_by_index(i) for i in range(args.jobs)]
            keyed_opts = kq.route_by_keys([f"customer-{i % 1000}" for i in range(args.jobs)])
            results: dict[str, list[float]] = {"single": [], "parts": [], "keyed": []}
            order = [
                ("single", None, "bench_single"),
                ("parts", opts, pq.logical_queue),
                ("keyed", keyed_opts, kq.logical_queue),
            ]
            for r in range(args.rounds):
                # Rotate which shape goes first so drift hits all of them alike.
                k = r % len(order)
                for name, o, q in order[k:] + order[:k]:
                    results[name].append(_run(client, _payloads(args.jobs, r), args.chunk, o, q))
            single, parts, keyed = results["single"], results["parts"], results["keyed"]
            t0 = time.perf_counter()
            stats = client.queue_stats()
            stats_ms = (time.perf_counter() - t0) * 1000
            stored = sum(st.total_queued for st in stats)
        s_med, p_med = statistics.median(single), statistics.median(parts)
        print(f"producer: {args.jobs} jobs in chunks of {args.chunk}, {args.rounds} rounds (median, best)")
        print(f"  single queue          : {s_med:10,.0f} jobs/s   (best {max(single):,.0f})")
        print(f"  4 partitions via opts : {p_med:10,.0f} jobs/s   (best {max(parts):,.0f})")
        k_med = statistics.median(keyed)
        print(f"  4 partitions + keys   : {k_med:10,.0f} jobs/s   (best {max(keyed):,.0f})")
        print(f"  ratio partitions/single (median): {p_med / s_med:.3f}   (best/best: {max(parts) / max(single):.3f})")
        print(f"  ratio keyed/single      (median): {k_med / s_med:.3f}   (best/best: {max(keyed) / max(single):.3f})")
        per_round = [k / s for k, s in zip(keyed, single)]
        print("  keyed/single per round: " + " ".join(f"{x:.3f}" for x in per_round))
        print(f"  queue_stats() with {stored:,} jobs stored: {stats_ms:.1f} ms")
        for st in stats:
            print(f"  {st.queue:<16} available={st.available:>7} lanes={len(st.lanes)}")
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
