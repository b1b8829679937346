"""End-to-end steps both sides of the benchmark share (standard library only).

bench/e2e.py (ours) imports this module; bench/awa_pg_side.py (awa-pg, in its
own virtualenv) loads it by path. Both clients have the same
``enqueue_many_copy(jobs, kind=, queue=, opts=)`` and both ``PartitionedQueue``
types the same ``route_by_index`` / ``logical_queue``, so one copy serves both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values (same rule on both sides)."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def enqueue_backlog(
    client: Any, pq: Any, make_job: Callable[..., Any], kind: str, total: int, chunk: int
) -> float:
    """COPY ``total`` jobs (``make_job(seq=i, t=now)``) round robin over the partitions; seconds taken."""
    started = time.perf_counter()
    for lo in range(0, total, chunk):
        hi = min(lo + chunk, total)
        now = time.time()
        jobs = [make_job(seq=i, t=now) for i in range(lo, hi)]
        await client.enqueue_many_copy(
            jobs, kind=kind, queue=pq.logical_queue, opts=[pq.route_by_index(i) for i in range(lo, hi)]
        )
    return time.perf_counter() - started


async def send_probes(
    client: Any, pq: Any, make_job: Callable[..., Any], kind: str, probe_jobs: int, interval_s: float
) -> None:
    """One probe job at a time (``seq`` = -1 - i, ``t`` = enqueue wall time), ``interval_s`` apart."""
    for i in range(probe_jobs):
        await client.enqueue_many_copy(
            [make_job(seq=-1 - i, t=time.time())], kind=kind, queue=pq.logical_queue, opts=[pq.route_by_index(i)]
        )
        await asyncio.sleep(interval_s)


def pickup_figures(latencies_s: Sequence[float]) -> dict[str, Any]:
    """probe_count and pickup p50 / p99 in milliseconds (None without probes)."""
    ordered = sorted(latencies_s)
    return {
        "probe_count": len(ordered),
        "pickup_p50_ms": None if not ordered else percentile(ordered, 50) * 1000,  # type: ignore[operator]
        "pickup_p99_ms": None if not ordered else percentile(ordered, 99) * 1000,  # type: ignore[operator]
    }
