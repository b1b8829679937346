"""Serial CPU per job, paired against a baseline in the same rounds.

Run by hand, not part of ``make bench``::

    .venv/bin/python -m bench.cpu_probe [--part keys|single] [--rounds 20] [--chunk 400]

This machine's speed drifts: the same loop took 55 to 105 µs per job at
different times of one day. Throughput runs minutes apart cannot show a 5 %
change, and whole drains one after the other barely can. This probe runs
the two sides of a comparison in alternating short chunks, one connection
each, and reads CPU time rather than the clock, so waiting does not count:
the server backend's from ``/proc/<pid>/schedstat`` (the server must run on
this machine) and the client's thread time. It prints per side the median
µs per job and the median of the per-round ratios with its quartiles.

* ``keys``: claims of ``--batch`` jobs over the partitions of a width
  ``--width`` queue, each followed by ``complete_many``; jobs with no key
  against jobs over 1,000 keys under a policy ``max_in_flight=1``.
* ``single``: ``Client.insert`` (one job, keyed over 8 partitions) against
  a plain prepared ``INSERT`` of a jobs-like row (bench/single.py's baseline).

The server is a throwaway embedded PostgreSQL with durability off (CPU
only), or ``--database-url``/``DATABASE_URL`` as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

KEYS = 1000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def backend_cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0])


class Side:
    """One side of a comparison: ``run(n)`` does n jobs' work on the backend ``pid``."""

    def __init__(self, name: str, pid: int, run: Callable[[int], int]) -> None:
        self.name, self.pid, self.run = name, pid, run
        self.server: dict[int, float] = {}
        self.client: dict[int, float] = {}

    def measure(self, rnd: int, n: int) -> None:
        c0, t0 = backend_cpu_ns(self.pid), time.thread_time()
        done = self.run(n)
        self.server[rnd] = (backend_cpu_ns(self.pid) - c0) / done / 1000
        self.client[rnd] = (time.thread_time() - t0) * 1e6 / done


def summarise(base: Side, other: Side) -> dict[str, Any]:
    from bench.__main__ import paired_ratios, quartiles
    from bench.harness import median

    out: dict[str, Any] = {}
    for side in (base, other):
        out[side.name] = {"server_us_per_job": median(list(side.server.values())),
                          "client_us_per_job": median(list(side.client.values()))}
    for what in ("server", "client", "total"):
        if what == "total":
            num = {r: other.server[r] + other.client[r] for r in other.server}
            den = {r: base.server[r] + base.client[r] for r in base.server}
        else:
            num, den = getattr(other, what), getattr(base, what)
        ratios = paired_ratios(num, den)
        out[f"{other.name}_vs_{base.name}_{what}"] = {"median": median(ratios), "quartiles": quartiles(ratios)}
    return out


def alternate(base: Side, other: Side, rounds: int, chunk: int) -> dict[str, Any]:
    for side in (base, other):  # plans, caches and the first pages of every table
        side.run(max(1, chunk // 4))
    for rnd in range(rounds):
        for side in ((base, other) if rnd % 2 == 0 else (other, base)):
            side.measure(rnd, chunk)
        log(f"cpu_probe: round {rnd + 1}/{rounds}: {base.name} {base.server[rnd]:.0f}+{base.client[rnd]:.0f} µs, "
            f"{other.name} {other.server[rnd]:.0f}+{other.client[rnd]:.0f} µs per job (server+client)")
    return summarise(base, other)


def _pid(conn: Any) -> int:
    return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def probe_keys(url: str, rounds: int, chunk: int, width: int, batch: int) -> dict[str, Any]:
    import psycopg

    from awa import Client, PartitionedQueue

    with Client(url) as admin:
        admin.migrate()
        admin.create_key_policy("probe_keyed", 1, from_ordering_key=True)
        total = chunk * (rounds + 1)
        sides, conns = [], []
        for name in ("probe_unkeyed", "probe_keyed"):
            pq = PartitionedQueue(name, width)
            for lo in range(0, total, 2000):
                n = min(2000, total - lo)
                if name == "probe_unkeyed":
                    opts = [pq.route_by_index(i) for i in range(lo, lo + n)]
                else:
                    opts = list(pq.route_by_keys([f"k{i % KEYS}" for i in range(lo, lo + n)]))
                admin.enqueue_many_copy([{"n": i} for i in range(lo, lo + n)], kind="probe", queue=name, opts=opts)
            conn = psycopg.connect(url, autocommit=True)
            conns.append(conn)
            conn.execute("SET synchronous_commit = off")
            client = Client(conn)

            def drain(n: int, client: Any = client, parts: list[str] = pq.physical_queues) -> int:
                done = empty = 0
                while done < n:
                    jobs = client.claim(parts, min(batch, n - done))
                    if not jobs:
                        empty += 1
                        if empty > 100:
                            raise RuntimeError("cpu_probe: the queue ran dry")
                        continue
                    client.complete_many([(j.id, j.run_lease) for j in jobs])
                    done += len(jobs)
                return done

            sides.append(Side(name.removeprefix("probe_"), _pid(conn), drain))
        try:
            return alternate(sides[0], sides[1], rounds, chunk)
        finally:
            for conn in conns:
                conn.close()


def probe_single(url: str, rounds: int, chunk: int) -> dict[str, Any]:
    import psycopg

    from awa import Client, PartitionedQueue
    from bench import single as single_bench
    from bench import single_common

    single_bench.prepare_plain(url)
    pq = PartitionedQueue("probe_single", 8)
    opts = single_common.routes(pq.route_by_key, pq.route_by_index, keyed=True)  # the single bench's keys
    n_opts = len(opts)
    plain = psycopg.connect(url, autocommit=True)
    plain.execute("SET synchronous_commit = off")

    def plain_run(n: int) -> int:
        for i in range(n):
            o = opts[i % n_opts]
            plain.execute(single_bench.PLAIN_INSERT, ("probe", o["queue"], '{"seq": %d}' % i, o["ordering_key"]),
                          prepare=True)
        return n

    with Client(url) as admin:
        admin.migrate()
    client = Client(url, max_connections=1, min_connections=1)
    try:
        with client.connection() as conn:
            pid = _pid(conn)
            conn.execute("SET synchronous_commit = off")

        def ours_run(n: int) -> int:
            for i in range(n):
                client.insert({"seq": i}, kind="probe", **opts[i % n_opts])
            return n

        return alternate(Side("plain", _pid(plain), plain_run), Side("ours", pid, ours_run), rounds, chunk)
    finally:
        client.close()
        plain.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("keys", "single"), default="keys")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=400, help="jobs per side and round")
    parser.add_argument("--width", type=int, default=4, help="keys: partitions")
    parser.add_argument("--batch", type=int, default=8, help="keys: jobs per claim")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    from bench.harness import open_server

    with open_server(args.database_url, durable=False) as server:
        name = server.name(f"cpu_{args.part}")
        url = server.create_database(name)
        try:
            if args.part == "keys":
                result = probe_keys(url, args.rounds, args.chunk, args.width, args.batch)
            else:
                result = probe_single(url, args.rounds, args.chunk)
        finally:
            server.drop_database(name)
        result.update(part=args.part, rounds=args.rounds, chunk=args.chunk, server=server.describe())
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
