"""Probe for ADR 0028 (lane numbers given at claim time): the ceiling of its insert.

Run by hand, not part of ``make bench``::

    .venv/bin/python -m bench.lazy_probe [--rounds 3] [--duration 10] [--warmup 2]

The same load as ``bench.horizon_probe`` (32 asyncio producers on a pool of
32, one job per transaction, keyed by customer over 8 lanes, one durable
server, sides interleaved in each round):

* ``plain``       the plain-INSERT baseline of bench/single.py;
* ``lazy``        the job row plus a row ``(lane, job_id)`` in a pending set,
  one statement, no lane row read or locked;
* ``lazy_claim``  ``lazy`` while one claimer session, in a process of its own,
  claims every lane in turn with ``probe_claim``: it locks the lane's head
  (``FOR UPDATE SKIP LOCKED``), numbers the pending rows its snapshot sees in
  job-id order (deletes them, writes one segment row each, bumps the head),
  then hands out up to 100 numbers after the cursor and moves it. It reports
  claims/s, the delay from insert to claim, and after a final drain the jobs
  left unclaimed or unnumbered, lanes whose numbers are not exactly 1..n and
  jobs numbered twice (all must be 0; the exit code is 1 otherwise);
* ``lazy_long``   ``lazy_claim`` while another session holds an xid for
  ``--hold`` seconds (a long transaction holds back nothing here);
* ``ours``        this project's ``AsyncClient.insert`` (width 8, keyed).

No side sends a notification: the claimer polls. Prints one JSON document:
per side the median over rounds of jobs/s, p50 and p99 insert latency (ms)
and the claimer's figures.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import psycopg

from bench import horizon_probe
from bench import single_common as common

SCHEMA = "bench_lazy"
LANES = horizon_probe.LANES
PRODUCERS = horizon_probe.PRODUCERS
CLAIM_BATCH = horizon_probe.CLAIM_BATCH
SIDES = ("plain", "lazy", "lazy_claim", "lazy_long", "ours")

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.jobs (
{horizon_probe.JOB_COLUMNS}
);
CREATE TABLE {SCHEMA}.pending (lane smallint NOT NULL, job_id bigint NOT NULL, PRIMARY KEY (lane, job_id));
CREATE TABLE {SCHEMA}.segments (lane smallint NOT NULL, seq bigint NOT NULL, job_id bigint NOT NULL,
                                PRIMARY KEY (lane, seq));
CREATE TABLE {SCHEMA}.heads (lane smallint PRIMARY KEY, next_seq bigint NOT NULL DEFAULT 1,
                             claim_seq bigint NOT NULL DEFAULT 0);
INSERT INTO {SCHEMA}.heads (lane) SELECT generate_series(0, {LANES - 1});

CREATE FUNCTION {SCHEMA}.probe_claim(p_lane smallint, p_limit int)
RETURNS TABLE (seq bigint, job_id bigint, waited float8) LANGUAGE plpgsql AS $$
DECLARE
    h record;
    n bigint;
BEGIN
    SELECT * INTO h FROM {SCHEMA}.heads AS x WHERE x.lane = p_lane FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Number what this snapshot sees as committed, in job-id order.
    WITH d AS (DELETE FROM {SCHEMA}.pending AS p WHERE p.lane = p_lane RETURNING p.job_id),
         s AS (INSERT INTO {SCHEMA}.segments (lane, seq, job_id)
               SELECT p_lane, h.next_seq - 1 + row_number() OVER (ORDER BY d.job_id), d.job_id FROM d
               RETURNING 1)
    SELECT count(*) INTO n FROM s;
    IF n > 0 THEN
        UPDATE {SCHEMA}.heads AS x SET next_seq = x.next_seq + n WHERE x.lane = p_lane;
    END IF;
    RETURN QUERY
    WITH c AS (
        SELECT g.seq, g.job_id FROM {SCHEMA}.segments AS g
        WHERE g.lane = p_lane AND g.seq > h.claim_seq ORDER BY g.seq LIMIT p_limit
    ), u AS (
        UPDATE {SCHEMA}.jobs AS j SET state = 'running', attempt = j.attempt + 1
        FROM c WHERE j.id = c.job_id
        RETURNING c.seq, c.job_id, extract(epoch FROM clock_timestamp() - j.created_at)::float8
    )
    SELECT * FROM u;
    UPDATE {SCHEMA}.heads AS x
    SET claim_seq = coalesce((SELECT max(g.seq) FROM {SCHEMA}.segments AS g
                              WHERE g.lane = p_lane AND g.seq > h.claim_seq AND g.seq <= h.claim_seq + p_limit),
                             x.claim_seq)
    WHERE x.lane = p_lane;
END
$$;
"""

INSERT = (
    f"WITH j AS (INSERT INTO {SCHEMA}.jobs (kind, queue, args, ordering_key, lane) "
    "VALUES (%s, %s, %s::jsonb, %s, %s) RETURNING id, lane) "
    f"INSERT INTO {SCHEMA}.pending (lane, job_id) SELECT lane, id FROM j"
)

CLAIM = f"SELECT seq, job_id, waited FROM {SCHEMA}.probe_claim(%s::smallint, %s)"

# Per lane the numbers are 1..n, each given once, and no job has two.
CHECK = f"""
SELECT
    (SELECT count(*) FROM {SCHEMA}.jobs WHERE state = 'available'),
    (SELECT count(*) FROM {SCHEMA}.pending),
    (SELECT count(*) FROM (SELECT lane, max(seq) AS m, count(*) AS c FROM {SCHEMA}.segments GROUP BY lane) s
     WHERE m <> c),
    (SELECT count(*) - count(DISTINCT job_id) FROM {SCHEMA}.segments)
"""


def _claim_loop(url: str, measure_from: float, stop_at: float, out: Any) -> None:
    claimed, delays = 0, []
    with psycopg.connect(url, autocommit=True) as conn:
        while time.time() < stop_at + 0.5:
            got = 0
            for lane in range(LANES):
                rows = conn.execute(CLAIM, (lane, CLAIM_BATCH)).fetchall()
                got += len(rows)
                if rows and measure_from <= time.time() <= stop_at:
                    claimed += len(rows)
                    delays.extend(float(w) * 1000 for _, _, w in rows)
            if not got:
                time.sleep(0.001)
        time.sleep(0.5)  # the producers' last transactions have ended
        for _ in range(1000):  # drain what is left
            if not sum(len(conn.execute(CLAIM, (lane, 10_000)).fetchall()) for lane in range(LANES)):
                break
        left, pending, gapped_lanes, numbered_twice = conn.execute(CHECK).fetchone()
    out.put({"claimed": claimed, "left_unclaimed": left, "left_pending": pending, "gapped_lanes": gapped_lanes,
             "numbered_twice": numbered_twice, "claim_delay_p50_ms": common.percentile(delays, 50),
             "claim_delay_p99_ms": common.percentile(delays, 99), "claim_delay_max_ms": max(delays, default=None)})


def run_lazy(url: str, duration_s: float, warmup_s: float, claim: bool, hold_s: float) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
    opts = horizon_probe.routes()
    lane_of = {q: n for n, q in enumerate(sorted({o["queue"] for o in opts}))}
    kind = common.JOB_KIND

    def params(i: int) -> tuple[Any, ...]:
        o = opts[i % len(opts)]
        return (kind, o["queue"], '{"seq": %d}' % i, o.get("ordering_key"), lane_of[o["queue"]])

    return horizon_probe.drive_producers(url, INSERT, params, _claim_loop if claim else None,
                                         duration_s, warmup_s, hold_s)


def measure(url: str, side: str, duration_s: float, warmup_s: float, hold_s: float) -> dict[str, Any]:
    """This probe's own sides (run_probe measures ``plain`` and ``ours``)."""
    return run_lazy(url, duration_s, warmup_s, side != "lazy", hold_s if side == "lazy_long" else 0.0)


def main(argv: list[str] | None = None) -> int:
    runs = horizon_probe.run_probe("python -m bench.lazy_probe", __doc__, SIDES, measure, argv)
    bad = [r for r in runs if r["result"].get("gapped_lanes") or r["result"].get("numbered_twice")
           or r["result"].get("left_unclaimed") or r["result"].get("left_pending")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
