"""Probe for ADR 0027 (visibility-horizon lane numbers): the ceiling of its insert.

Run by hand, not part of ``make bench``::

    .venv/bin/python -m bench.horizon_probe [--rounds 3] [--duration 10] [--warmup 2]

On one durable server (DATABASE_URL, else an embedded PostgreSQL 18 with
PostgreSQL's durability defaults, as ``make bench``), 32 asyncio producers on
a pool of 32, one job and one transaction per call, keyed by customer over 8
partitions, sides interleaved in each round:

* ``plain``    the plain-INSERT baseline of bench/single.py;
* ``horizon``  the same row plus ``lane``, ``xid = pg_current_xact_id()`` and
  ``seq = nextval()`` of the lane's sequence (no lane row, no lock), with the
  claim index ``(lane, xid, seq)``;
* ``horizon_claim``  ``horizon`` while one claimer session claims by horizon:
  rows of a lane after its cursor ``(xid, seq)`` with
  ``xid < pg_snapshot_xmin(pg_current_snapshot())``, in ``(xid, seq)`` order,
  100 at a time; it reports claims/s, the delay from the row's insert to
  its claim (backlog included), how many xids the horizon holds back
  (xmax - xmin of its snapshots) and the rows left behind its cursors;
* ``claim_nogate``  the same claimer without the horizon condition (unsafe),
  to tell the claimer's own speed from what the horizon holds back;
* ``horizon_long``  ``horizon_claim`` while another session holds an xid for
  ``--hold`` seconds in the middle of the window (a long transaction);
* ``ours``     this project's ``AsyncClient.insert`` (width 8, keyed).

Prints one JSON document: per side the median over rounds of jobs/s, p50 and
p99 insert latency (ms), and the claimer's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bench import single as single_bench
from bench import single_common as common
from bench.harness import open_server

SCHEMA = "bench_horizon"
LANES = 8
PRODUCERS = 32
CLAIM_BATCH = 100
SIDES = ("plain", "horizon", "horizon_claim", "claim_nogate", "horizon_long", "ours")

# The probes' job table: the plain baseline's row, a claim-delay clock and the lane.
JOB_COLUMNS = """
    id           bigserial PRIMARY KEY,
    kind         text        NOT NULL,
    queue        text        NOT NULL,
    args         jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'available',
    priority     smallint    NOT NULL DEFAULT 2,
    attempt      smallint    NOT NULL DEFAULT 0,
    max_attempts smallint    NOT NULL DEFAULT 25,
    ordering_key bytea,
    run_at       timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    lane         smallint    NOT NULL"""

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.jobs (
{JOB_COLUMNS},
    xid          xid8        NOT NULL,
    seq          bigint      NOT NULL
);
CREATE INDEX ON {SCHEMA}.jobs (lane, xid, seq);
""" + "".join(f"CREATE SEQUENCE {SCHEMA}.lane_{n};\n" for n in range(LANES))

INSERT = (
    f"INSERT INTO {SCHEMA}.jobs (kind, queue, args, ordering_key, lane, xid, seq) "
    "VALUES (%s, %s, %s::jsonb, %s, %s, pg_current_xact_id(), nextval(%s::regclass))"
)

# One statement: the horizon and the rows come from the same snapshot.
CLAIM = f"""
WITH c AS (
    SELECT id FROM {SCHEMA}.jobs
    WHERE lane = %(lane)s AND (xid, seq) > (%(xid)s::xid8, %(seq)s)
      AND xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, seq
    LIMIT %(limit)s
)
UPDATE {SCHEMA}.jobs j SET state = 'running', attempt = attempt + 1
FROM c WHERE j.id = c.id
RETURNING j.xid::text, j.seq, extract(epoch FROM clock_timestamp() - j.created_at)
"""

# The same claim without the horizon (unsafe: it skips late commits), to tell
# the claimer's own speed from what the horizon holds back.
CLAIM_NOGATE = CLAIM.replace("      AND xid < pg_snapshot_xmin(pg_current_snapshot())\n", "")
assert CLAIM_NOGATE != CLAIM

# Committed rows left behind a lane's cursor: a claim by cursor never reaches them.
STRANDED = (f"SELECT count(*) FROM {SCHEMA}.jobs WHERE lane = %(lane)s AND state = 'available' "
            "AND (xid, seq) <= (%(xid)s::xid8, %(seq)s)")

# How many xids the horizon holds back: xmax - xmin of a snapshot (the
# transactions begun after the oldest one still running).
SPAN = ("SELECT (pg_snapshot_xmax(s)::text::bigint - pg_snapshot_xmin(s)::text::bigint)::int "
        "FROM pg_current_snapshot() s")


def routes() -> list[dict[str, Any]]:
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue(single_bench.QUEUE, LANES)
    return common.routes(pq.route_by_key, pq.route_by_index, True)


def _claim_loop(url: str, measure_from: float, stop_at: float, out: Any, gate: bool = True) -> None:
    """One session claiming every lane in turn by horizon, in a process of its own
    (a thread would share the GIL with the producers' event loop)."""
    cursor = {lane: ("0", 0) for lane in range(LANES)}
    claimed, delays, spans = 0, [], []
    with psycopg.connect(url, autocommit=True) as conn:
        while time.time() < stop_at + 0.5:
            got = 0
            for lane in range(LANES):
                xid, seq = cursor[lane]
                rows = conn.execute(CLAIM if gate else CLAIM_NOGATE, {"lane": lane, "xid": xid, "seq": seq, "limit": CLAIM_BATCH}).fetchall()
                if not rows:
                    continue
                got += len(rows)
                top = max((int(x), s) for x, s, _ in rows)
                cursor[lane] = (str(top[0]), top[1])
                if measure_from <= time.time() <= stop_at:
                    claimed += len(rows)
                    delays.extend(float(d) * 1000 for _, _, d in rows)
            if measure_from <= time.time() <= stop_at:
                spans.append(conn.execute(SPAN).fetchone()[0])
            if not got:
                time.sleep(0.001)
        time.sleep(0.5)  # the producers' last transactions have ended
        stranded = sum(conn.execute(STRANDED, {"lane": lane, "xid": xid, "seq": seq}).fetchone()[0]
                       for lane, (xid, seq) in cursor.items())
    out.put({"claimed": claimed, "stranded": stranded, "claim_delay_p50_ms": common.percentile(delays, 50),
             "claim_delay_p99_ms": common.percentile(delays, 99), "claim_delay_max_ms": max(delays, default=None),
             "held_xids_p50": common.percentile(spans, 50), "held_xids_p99": common.percentile(spans, 99),
             "held_xids_max": max(spans, default=None)})


def hold_xid(url: str, at: float, hold_s: float) -> threading.Thread:
    """A session that writes (gets an xid) at ``at`` and commits ``hold_s`` later."""

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            time.sleep(max(0.0, at - time.perf_counter()))
            with conn.transaction():
                conn.execute("SELECT pg_current_xact_id()")
                time.sleep(hold_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_horizon(url: str, duration_s: float, warmup_s: float, claim: bool, hold_s: float,
                gate: bool = True) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        conn.execute(f"VACUUM ANALYZE {SCHEMA}.jobs")
    opts = routes()
    lane_of = {q: n for n, q in enumerate(sorted({o["queue"] for o in opts}))}
    kind = common.JOB_KIND

    def params(i: int) -> tuple[Any, ...]:
        o = opts[i % len(opts)]
        lane = lane_of[o["queue"]]
        return (kind, o["queue"], '{"seq": %d}' % i, o.get("ordering_key"), lane, f"{SCHEMA}.lane_{lane}")

    return drive_producers(url, INSERT, params, (lambda *a: _claim_loop(*a, gate)) if claim else None,
                           duration_s, warmup_s, hold_s)


def drive_producers(url: str, insert_sql: str, params: Any, claim_loop: Any, duration_s: float,
                    warmup_s: float, hold_s: float) -> dict[str, Any]:
    """PRODUCERS asyncio producers on one pool, one ``insert_sql`` per call;
    with ``claim_loop`` a claimer process, called as ``claim_loop(url,
    measure_from, stop_at, out)`` (wall-clock times; it puts its figures on
    ``out``); with ``hold_s`` a session holding an xid that long a third into
    the window."""
    start = time.perf_counter()
    claimer = None
    if claim_loop:
        ctx = multiprocessing.get_context("fork")
        box = ctx.Queue()
        wall = time.time()
        claimer = ctx.Process(target=claim_loop, args=(url, wall + warmup_s, wall + warmup_s + duration_s, box))
        claimer.start()
    holder = hold_xid(url, start + warmup_s + duration_s / 3, hold_s) if hold_s else None

    async def go() -> dict[str, Any]:
        async with AsyncConnectionPool(url, min_size=PRODUCERS, max_size=PRODUCERS,
                                       kwargs={"autocommit": True}, open=False) as pool:
            await pool.wait()

            async def insert(i: int) -> None:
                async with pool.connection() as conn:
                    await conn.execute(insert_sql, params(i))

            return await common.drive_async(insert, PRODUCERS, duration_s, warmup_s)

    res = asyncio.run(go())
    if holder:
        holder.join()
    if claimer:
        res.update(box.get(timeout=120))
        claimer.join()
        res["claims_per_s"] = res["claimed"] / duration_s
    return res


def measure_baseline(url: str, side: str, duration_s: float, warmup_s: float) -> dict[str, Any] | None:
    """The sides both probes share: ``plain`` and ``ours``; None for any other."""
    cfg = single_bench.Config("async", PRODUCERS, LANES, True)
    if side == "plain":
        return single_bench.run_plain(url, cfg, False, duration_s, warmup_s)
    if side == "ours":
        return single_bench.run_ours(url, cfg, duration_s, warmup_s)
    return None


def measure(url: str, side: str, duration_s: float, warmup_s: float, hold_s: float) -> dict[str, Any]:
    """This probe's own sides (run_probe measures ``plain`` and ``ours``)."""
    return run_horizon(url, duration_s, warmup_s, side != "horizon", hold_s if side == "horizon_long" else 0.0,
                       gate=side != "claim_nogate")


def summarise(runs: list[dict[str, Any]], sides: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in sides:
        mine = [r["result"] for r in runs if r["side"] == side]
        fields = sorted({k for r in mine for k, v in r.items() if isinstance(v, (int, float))})
        out[side] = {k: statistics.median([r[k] for r in mine if r.get(k) is not None])
                     for k in fields if any(r.get(k) is not None for r in mine)}
    plain = out["plain"].get("jobs_per_s")
    for side in sides:
        if plain and out[side].get("jobs_per_s"):
            out[side]["of_plain"] = round(out[side]["jobs_per_s"] / plain, 3)
    return out


def run_probe(prog: str, doc: str, sides: tuple[str, ...], measure_side: Any,
              argv: list[str] | None) -> list[dict[str, Any]]:
    """Parse the probes' common options, run every side in every round (the
    order reversed every other round), each on a fresh database, and print
    the JSON document; returns the runs. ``plain`` and ``ours`` are measured
    here, every other side by ``measure_side(url, side, duration, warmup,
    hold)``."""
    from bench.__main__ import Runner

    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the long transaction holds its xid")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with open_server(durable=True) as server:
        runner = Runner(server, SimpleNamespace(available=False), args)
        runner.prepare_databases()
        meta = server.describe()
        for rnd in range(args.rounds):
            order = sides if rnd % 2 == 0 else sides[::-1]
            for side in order:
                url = runner.fresh("ours")
                res = measure_baseline(url, side, args.duration, args.warmup)
                if res is None:
                    res = measure_side(url, side, args.duration, args.warmup, args.hold)
                runs.append({"round": rnd, "side": side, "result": res})
                print(f"r{rnd + 1} {side}: {json.dumps(res)}", file=sys.stderr, flush=True)
    print(json.dumps({"server": meta, "producers": PRODUCERS, "lanes": LANES, "rounds": args.rounds,
                      "duration_s": args.duration, "summary": summarise(runs, sides), "runs": runs}, indent=2))
    return runs


def main(argv: list[str] | None = None) -> int:
    run_probe("python -m bench.horizon_probe", __doc__, SIDES, measure, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
