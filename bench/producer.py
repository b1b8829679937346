"""Producer path: direct COPY of N jobs in chunks, no workers (awa's PR smoke benchmark).

Scenarios (each side, every round, a fresh database):

* ``single``   — one physical queue;
* ``wN index`` — a ``PartitionedQueue`` of width N (1, 2, 4, 8), job ``i`` routed by
  index: exactly N-th of the jobs per partition (ours: the batch form
  ``route_by_indexes`` per chunk; awa-pg, which has none: ``route_by_index`` per job);
* ``w4 index, dicts`` — the same at width 4 with ``route_by_index(i)`` per job on
  both sides (a list of dicts: what a producer without the batch form pays);
* ``w4 key``   — width 4, routed by key ``f"customer-{i % 1000}"`` (ours: the batch
  form ``route_by_keys`` per chunk; awa-pg: ``route_by_key`` per job);
* ``w1 index, dicts`` and ``w1 key`` — the same jobs and per-job opts through a
  width-1 ``PartitionedQueue``, which is exactly one plain queue: ``w4 key / w1 key``
  is what partitioning costs keyed jobs, with the cost of the keys themselves (and
  of a dict per job) on both sides of the ratio;
* ``single, again`` — the control: ``single`` run a second time in the round. Its
  ratio to ``single`` is what identical work reads as on this machine, the noise
  floor of every other ratio in the table.

The timed loop builds each chunk's job objects and per-job opts and COPYs it,
exactly like bench/awa_pg_side.py does for awa-pg.

``run_ours_interleaved`` runs our scenarios chunk by chunk in turn in one database
(chunk 1 of every scenario, then chunk 2, ...): each chunk of one scenario is timed
within milliseconds of the same chunk of every other, so the machine's slow and fast
spells (steady chunks take about 15 or about 25 ms here) fall on all of them alike.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

JOB_KIND = "bench_noop"
CONTROL = "single, again"  # the A/A control scenario (see the module docstring)


@dataclass(frozen=True)
class Scenario:
    name: str
    width: int | None
    routing: str  # "none" | "index" | "dicts" (index, a dict per job) | "key"

    @property
    def queue(self) -> str:
        return "bench_single" if self.width is None else f"bench_w{self.width}_{self.routing}"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("single", None, "none"),
    Scenario("w1 index", 1, "index"),
    Scenario("w2 index", 2, "index"),
    Scenario("w4 index", 4, "index"),
    Scenario("w8 index", 8, "index"),
    Scenario("w4 index, dicts", 4, "dicts"),
    Scenario("w4 key", 4, "key"),
    Scenario("w1 index, dicts", 1, "dicts"),
    Scenario("w1 key", 1, "key"),
    Scenario(CONTROL, None, "none"),  # same work as "single", same queue name
)


@dataclass
class BenchNoop:
    seq: int
    t: float  # wall-clock enqueue time (pickup latency in the end-to-end benchmark)


def key_for(i: int) -> str:
    return f"customer-{i % 1000}"


def expected_index_distribution(queues: list[str], total: int) -> dict[str, int]:
    """Round robin by index: queue j gets every job i with i % width == j."""
    width = len(queues)
    return {q: total // width + (1 if j < total % width else 0) for j, q in enumerate(queues)}


def check_distribution(
    scenario: Scenario, physical_queues: list[str], distribution: dict[str, int], total: int
) -> tuple[bool, str]:
    """Index routing must be exact; every routed job must land on one of the partitions."""
    if sum(distribution.values()) != total:
        return False, f"{sum(distribution.values())} rows stored, expected {total}"
    stray = set(distribution) - set(physical_queues)
    if stray:
        return False, f"jobs outside the partitions: {sorted(stray)}"
    if scenario.routing in ("index", "dicts"):
        expected = expected_index_distribution(physical_queues, total)
        if {q: distribution.get(q, 0) for q in physical_queues} != expected:
            return False, f"got {distribution}, expected {expected}"
        return True, "exact " + "/".join(str(expected[q]) for q in physical_queues)
    return True, "/".join(str(distribution.get(q, 0)) for q in physical_queues)


# --- our side -----------------------------------------------------------------


class Route:
    """How a scenario builds a chunk's opts: ``keys(lo, hi)`` is the caller's own
    per-job data (the key strings; ``keys`` is None when routing by index), ``opts(keys, lo, hi)``
    the routing call. Timed apart in the chunk-interleaved section."""

    def __init__(self, keys: Any, opts: Any) -> None:
        self.keys = keys
        self.opts = opts


def _key_strings(lo: int, hi: int) -> list[str]:
    return [key_for(i) for i in range(lo, hi)]


def _router(scenario: Scenario, chunk: int = 2000) -> tuple[Any, Route | None]:
    """(partitioned queue, its :class:`Route`) for jobs lo..hi-1.

    Index and key routing use our batch forms (``route_by_indexes``,
    ``route_by_keys``: one ``RoutedOpts`` per chunk, no dict per job); the
    ``dicts`` scenario builds the list of ``route_by_index`` dicts instead.
    """
    from awa.routing import PartitionedQueue

    if scenario.width is None:
        return None, None
    pq = PartitionedQueue(scenario.queue, scenario.width)
    if scenario.routing == "index":
        return pq, Route(None, lambda _keys, lo, hi: pq.route_by_indexes(range(lo, hi)))
    if scenario.routing == "dicts":
        return pq, Route(None, lambda _keys, lo, hi: [pq.route_by_index(i) for i in range(lo, hi)])
    # The first full-size batch imports numpy (vectorised hashing): not part of the producer path.
    pq.route_by_keys(_key_strings(0, chunk))
    return pq, Route(_key_strings, lambda keys, lo, hi: pq.route_by_keys(keys))


def open_async_client(database_url: str, **kwargs: Any) -> Any:
    from awa.client import AsyncClient

    return AsyncClient(database_url, **kwargs)


async def open_pool(client: Any) -> None:
    """Open the client's pool before the clock starts (connecting is not enqueueing)."""
    await client.__aenter__()


async def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        result = close()
        if asyncio.iscoroutine(result):
            await result


def run_within(coro: Any, limit_s: float) -> Any:
    """``asyncio.run(coro)``, cancelled after ``limit_s`` seconds (``asyncio.TimeoutError``)."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, limit_s)

    return asyncio.run(bounded())


async def enqueue_chunk(
    client: Any, queue: str, route: Route | None, lo: int, hi: int, spent: dict[str, list[float]] | None = None
) -> int:
    """One chunk of a timed producer loop: build jobs ``lo``..``hi - 1`` and their
    opts, and enqueue them (the same work in every section that times chunks).

    ``spent`` receives the seconds of this chunk spent building the key
    strings (``"keys"``) and in the routing call (``"route"``), 0.0 where a
    scenario has none: the caller's work before ``enqueue_many_copy`` is called.
    """
    now = time.time()
    jobs = [BenchNoop(seq=i, t=now) for i in range(lo, hi)]
    keys_s = route_s = 0.0
    if route is None:
        opts = None
    else:
        keys = None
        if route.keys is not None:
            started = time.perf_counter()
            keys = route.keys(lo, hi)
            keys_s = time.perf_counter() - started
        routing = time.perf_counter()
        opts = route.opts(keys, lo, hi)
        route_s = time.perf_counter() - routing
    if spent is not None:
        spent["keys"].append(keys_s)
        spent["route"].append(route_s)
    return await client.enqueue_many_copy(jobs, kind=JOB_KIND, queue=queue, opts=opts)


async def run_ours_async(database_url: str, scenario: Scenario, total: int, chunk: int) -> dict[str, Any]:
    pq, route = _router(scenario, chunk)
    queue = pq.logical_queue if pq is not None else scenario.queue
    client = open_async_client(database_url)
    try:
        await open_pool(client)
        inserted = 0
        started = time.perf_counter()
        for lo in range(0, total, chunk):
            inserted += await enqueue_chunk(client, queue, route, lo, min(lo + chunk, total))
        elapsed = time.perf_counter() - started
    finally:
        await _close(client)
    distribution = stored_distribution(database_url)
    physical = pq.physical_queues if pq is not None else [queue]
    return {
        "ok": True,
        "inserted": inserted,
        "elapsed_s": elapsed,
        "jobs_per_s": inserted / elapsed if elapsed > 0 else None,
        "distribution": distribution,
        "physical_queues": physical,
    }


async def run_ours_interleaved_async(
    database_url: str, scenarios: tuple[Scenario, ...], total: int, chunk: int, shift: int = 0
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """({scenario name: seconds of each of its chunks}, {scenario name: {"keys" |
    "route": seconds of each chunk spent building its key strings | routing}}), the
    scenarios taking turns.

    Each scenario has its own client (pool opened before the clock) and queue. The
    order of the turns rotates by one per chunk, starting at ``shift``, so no
    scenario always follows the same one. A chunk's time covers what the timed loop
    of :func:`run_ours_async` does for it (:func:`enqueue_chunk`).
    """
    routers = [_router(s, chunk) for s in scenarios]
    queues = [pq.logical_queue if pq is not None else s.queue for s, (pq, _) in zip(scenarios, routers)]
    clients = [open_async_client(database_url) for _ in scenarios]
    times: dict[str, list[float]] = {s.name: [] for s in scenarios}
    opts_times: dict[str, dict[str, list[float]]] = {s.name: {"keys": [], "route": []} for s in scenarios}
    try:
        for client in clients:
            await open_pool(client)
        n = len(scenarios)
        for k, lo in enumerate(range(0, total, chunk)):
            hi = min(lo + chunk, total)
            for turn in range(n):
                i = (turn + shift + k) % n
                started = time.perf_counter()
                await enqueue_chunk(clients[i], queues[i], routers[i][1], lo, hi, opts_times[scenarios[i].name])
                times[scenarios[i].name].append(time.perf_counter() - started)
    finally:
        for client in clients:
            await _close(client)
    return times, opts_times


def run_ours_interleaved(
    database_url: str, scenarios: tuple[Scenario, ...], total: int, chunk: int, shift: int = 0, *, limit_s: float = 300
) -> dict[str, Any]:
    try:
        times, opts_times = run_within(run_ours_interleaved_async(database_url, scenarios, total, chunk, shift), limit_s)
    except asyncio.TimeoutError:
        return {"ok": False, "error": f"interleaved run did not finish within {limit_s:.0f}s"}
    stored = sum(stored_distribution(database_url).values())
    expected = total * len(scenarios)
    if stored != expected:
        return {"ok": False, "error": f"{stored} rows stored, expected {expected}"}
    return {"ok": True, "chunk_s": times, "opts_s": opts_times}


def run_ours(database_url: str, scenario: Scenario, total: int, chunk: int, *, limit_s: float = 300) -> dict[str, Any]:
    try:
        return run_within(run_ours_async(database_url, scenario, total, chunk), limit_s)
    except asyncio.TimeoutError:
        return {"ok": False, "error": f"our side did not finish within {limit_s:.0f}s"}


def stored_distribution(database_url: str, schema: str = "awa") -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT queue, count(*) FROM {}.jobs GROUP BY queue").format(sql.Identifier(schema))
        ).fetchall()
    return {q: int(n) for q, n in rows}


# --- where keyed jobs land: partition x enqueue shard --------------------------


def keyed_landing(database_url: str, *, width: int, shards: int, total: int, chunk: int) -> dict[str, Any]:
    """Enqueue ``total`` keyed jobs into ``width`` partitions with ``shards`` enqueue
    shards each; return the stored (partition, shard) counts and whether they equal
    the counts the pure routing functions predict. Untimed: it feeds the heatmap."""
    from awa.client import Client
    from awa.routing import PartitionedQueue, shard_for_ordering_key

    pq = PartitionedQueue("bench_keyed_landing", width)
    queues = pq.physical_queues
    client = Client(database_url)
    try:
        for q in queues:
            client.set_enqueue_shards(q, shards)
        for lo in range(0, total, chunk):
            hi = min(lo + chunk, total)
            jobs = [BenchNoop(seq=i, t=0.0) for i in range(lo, hi)]
            client.enqueue_many_copy(
                jobs, kind=JOB_KIND, queue=pq.logical_queue, opts=[pq.route_by_key(key_for(i)) for i in range(lo, hi)]
            )
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT queue, enqueue_shard, count(*) FROM awa.jobs GROUP BY 1, 2").fetchall()
    stored = [[0] * shards for _ in queues]
    for q, shard, n in rows:
        stored[queues.index(q)][int(shard)] = int(n)
    predicted = [[0] * shards for _ in queues]
    for i in range(total):
        key = key_for(i)
        predicted[queues.index(pq.queue_for_key(key))][shard_for_ordering_key(key, shards)] += 1
    return {
        "width": width,
        "shards": shards,
        "total": total,
        "physical_queues": queues,
        "counts": stored,
        "matches_routing_functions": stored == predicted,
        "distinct_keys": len({key_for(i) for i in range(total)}),
    }
