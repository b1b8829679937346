"""Single-job enqueue: concurrent producers, one job and one transaction per call.

Sides, interleaved in one run on one server:

* ``ours``   — ``AsyncClient.insert`` from asyncio tasks, or ``Client.insert``
  from threads, one pool connection per producer;
* ``awa_pg`` — awa-pg 0.6.9 ``AsyncClient.insert`` / ``Client.insert``
  (bench/awa_pg_side.py, its own virtualenv);
* ``plain``  — what PostgreSQL itself allows: an ``INSERT`` of a jobs-like row
  (bigserial key, jsonb args) per call on the same kind of pool;
* ``plain_notify`` — the same ``INSERT`` plus ``pg_notify`` in its transaction.

Jobs are keyed by customer (``route_by_key``) or spread round robin
(``route_by_index``) over a ``PartitionedQueue`` of width 1 to 16. While a run
goes on, a sampler counts the wait events of that database's active sessions
in ``pg_stat_activity`` (what the server spends its time waiting on).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from bench import single_common as common

MODES = ("async", "threads")
PLAIN_SIDES = ("plain", "plain_notify")
QUEUE = "single"
PLAIN_SCHEMA = "bench_plain"
PLAIN_CHANNEL = "bench_plain"


@dataclass(frozen=True)
class Config:
    mode: str  # "async" | "threads"
    producers: int
    width: int
    keyed: bool

    @property
    def name(self) -> str:
        return f"{self.mode} p{self.producers} w{self.width} {'key' if self.keyed else 'index'}"


def configs(full: bool, quick: bool, widths: tuple[int, ...] | None = None) -> list[Config]:
    """The measured matrix. Default: the width sweep (1-16, keyed and unkeyed) at
    32 producers in both modes, and 8 and 64 producers at width 8 keyed.
    ``full``: every mode x producers x width x keyed. ``quick``: a small subset.
    ``widths``: only these widths (``--single-widths``)."""
    if quick:
        out = [Config("async", 8, w, True) for w in (1, 8)] + [Config("threads", 8, 8, False)]
    elif full:
        out = [Config(m, p, w, k) for m in MODES for p in (8, 32, 64) for w in (1, 2, 4, 8, 16) for k in (True, False)]
    else:
        out = [Config(m, 32, w, k) for m in MODES for k in (True, False) for w in (1, 2, 4, 8, 16)]
        out += [Config(m, p, 8, True) for m in MODES for p in (8, 64)]
    return [c for c in out if widths is None or c.width in widths]


# --- wait-event sampling --------------------------------------------------------


class WaitSampler:
    """Counts (wait_event_type, wait_event) of the active sessions of one database,
    every ``interval_s``, from a connection of its own (not counted)."""

    def __init__(self, url: str, dbname: str, interval_s: float = 0.02) -> None:
        self.url, self.dbname, self.interval_s = url, dbname, interval_s
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, 'running') FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    (self.dbname,),
                ).fetchall()
                self.samples += 1
                for kind, event in rows:
                    self.counts[f"{kind}:{event}"] += 1
                self._stop.wait(self.interval_s)

    def summary(self, top: int = 6) -> dict[str, Any]:
        """Mean sessions per sample in each wait, the largest first."""
        n = max(1, self.samples)
        return {
            "samples": self.samples,
            "top": {name: round(count / n, 2) for name, count in self.counts.most_common(top)},
        }


# --- the plain-INSERT baseline ------------------------------------------------------


PLAIN_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {PLAIN_SCHEMA};
CREATE TABLE IF NOT EXISTS {PLAIN_SCHEMA}.jobs (
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
    created_at   timestamptz NOT NULL DEFAULT now()
);
"""
PLAIN_INSERT = f"INSERT INTO {PLAIN_SCHEMA}.jobs (kind, queue, args, ordering_key) VALUES (%s, %s, %s::jsonb, %s)"
PLAIN_INSERT_NOTIFY = (
    f"WITH i AS (INSERT INTO {PLAIN_SCHEMA}.jobs (kind, queue, args, ordering_key) VALUES (%s, %s, %s::jsonb, %s) "
    f"RETURNING queue) SELECT pg_notify('{PLAIN_CHANNEL}', queue) FROM i"
)


def prepare_plain(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN_DDL)
        conn.execute(f"TRUNCATE {PLAIN_SCHEMA}.jobs RESTART IDENTITY")
        conn.execute(f"VACUUM ANALYZE {PLAIN_SCHEMA}.jobs")


def _routes(width: int, keyed: bool) -> list[dict[str, Any]]:
    from awa.routing import PartitionedQueue

    pq = PartitionedQueue(QUEUE, width)
    return common.routes(pq.route_by_key, pq.route_by_index, keyed)


def run_plain(url: str, cfg: Config, notify: bool, duration_s: float, warmup_s: float) -> dict[str, Any]:
    prepare_plain(url)
    opts = _routes(cfg.width, cfg.keyed)
    n = len(opts)
    statement = PLAIN_INSERT_NOTIFY if notify else PLAIN_INSERT
    kind = common.JOB_KIND

    def params(i: int) -> tuple[Any, ...]:
        o = opts[i % n]
        return (kind, o["queue"], '{"seq": %d}' % i, o.get("ordering_key"))

    if cfg.mode == "threads":
        with ConnectionPool(url, min_size=cfg.producers, max_size=cfg.producers, kwargs={"autocommit": True}) as pool:
            pool.wait()

            def insert(i: int) -> None:
                with pool.connection() as conn:
                    conn.execute(statement, params(i))

            return common.drive_threads(insert, cfg.producers, duration_s, warmup_s)

    async def go() -> dict[str, Any]:
        async with AsyncConnectionPool(
            url, min_size=cfg.producers, max_size=cfg.producers, kwargs={"autocommit": True}, open=False
        ) as pool:
            await pool.wait()

            async def insert(i: int) -> None:
                async with pool.connection() as conn:
                    await conn.execute(statement, params(i))

            return await common.drive_async(insert, cfg.producers, duration_s, warmup_s)

    return asyncio.run(go())


# --- ours -----------------------------------------------------------------------


def run_ours(url: str, cfg: Config, duration_s: float, warmup_s: float) -> dict[str, Any]:
    from awa import AsyncClient, Client

    opts = _routes(cfg.width, cfg.keyed)
    n = len(opts)
    kind = common.JOB_KIND
    if cfg.mode == "threads":
        client = Client(url, max_connections=cfg.producers, min_connections=cfg.producers)
        try:
            return common.drive_threads(
                lambda i: client.insert({"seq": i}, kind=kind, **opts[i % n]), cfg.producers, duration_s, warmup_s
            )
        finally:
            client.close()

    async def go() -> dict[str, Any]:
        client = AsyncClient(url, max_connections=cfg.producers, min_connections=cfg.producers)
        try:
            return await common.drive_async(
                lambda i: client.insert({"seq": i}, kind=kind, **opts[i % n]), cfg.producers, duration_s, warmup_s
            )
        finally:
            await client.close()

    return asyncio.run(go())


def stored_ours(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT queue, count(*)::bigint FROM awa.jobs GROUP BY queue").fetchall())


def timed(fn: Any, url: str, dbname: str, *args: Any) -> dict[str, Any]:
    """Run one measurement with the wait sampler around it; errors become results."""
    import traceback

    started = time.perf_counter()
    try:
        with WaitSampler(url, dbname) as sampler:
            res = fn(*args)
        res = {"ok": True, **res, "waits": sampler.summary()}
    except Exception as exc:
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    res["wall_s"] = time.perf_counter() - started
    return res
