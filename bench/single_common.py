"""Concurrent single inserts: the load generator both sides share.

Standard library only: bench/awa_pg_side.py loads this file by path inside
awa-pg's own virtualenv. A producer (an asyncio task or a thread) calls
``insert(i)`` in a loop, one job and one transaction per call, for
``warmup_s + duration_s`` seconds; only calls that end inside the measured
window count, so connection set-up and the first plans stay out of the figures.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

JOB_KIND = "bench_single"
KEYS = 1000  # distinct ordering keys of a keyed run: f"customer-{i % KEYS}"


def key_for(i: int) -> str:
    return f"customer-{i % KEYS}"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the rule of bench/e2e_common.py)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def figures(latencies_s: list[float], window_s: float, errors: int, first_error: str | None) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "measured": len(ms),
        "window_s": window_s,
        "jobs_per_s": len(ms) / window_s if window_s > 0 and ms else None,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "errors": errors,
        "first_error": first_error,
    }


async def drive_async(
    insert: Callable[[int], Awaitable[Any]], producers: int, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    counter = itertools.count()
    latencies: list[float] = []
    errors = [0, None]
    start = time.perf_counter()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s

    async def producer() -> None:
        perf = time.perf_counter
        while True:
            t0 = perf()
            if t0 >= stop_at:
                return
            try:
                await insert(next(counter))
            except Exception as exc:  # counted and reported, never raised through the run
                errors[0] += 1
                errors[1] = errors[1] or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)
                continue
            t1 = perf()
            if measure_from <= t0 and t1 <= stop_at:
                latencies.append(t1 - t0)

    await asyncio.gather(*(producer() for _ in range(producers)))
    return figures(latencies, duration_s, errors[0], errors[1])


def drive_threads(insert: Callable[[int], Any], producers: int, duration_s: float, warmup_s: float) -> dict[str, Any]:
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[Any] = [0, None]
    start = time.perf_counter()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s

    def producer() -> None:
        perf = time.perf_counter
        mine: list[float] = []
        while True:
            t0 = perf()
            if t0 >= stop_at:
                break
            with lock:
                i = next(counter)
            try:
                insert(i)
            except Exception as exc:
                with lock:
                    errors[0] += 1
                    errors[1] = errors[1] or f"{type(exc).__name__}: {exc}"
                time.sleep(0.01)
                continue
            t1 = perf()
            if measure_from <= t0 and t1 <= stop_at:
                mine.append(t1 - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=producer, daemon=True) for _ in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return figures(latencies, duration_s, errors[0], errors[1])


def routes(route_by_key: Callable[[str], dict[str, Any]], route_by_index: Callable[[int], dict[str, Any]],
           keyed: bool) -> list[dict[str, Any]]:
    """The per-job opts of job i are ``routes[i % len(routes)]``, computed before
    the clock starts: keyed by ``key_for(i)``, or round robin by index (1008 is a
    multiple of every width measured, so each partition gets its share)."""
    if keyed:
        return [route_by_key(key_for(i)) for i in range(KEYS)]
    return [route_by_index(i) for i in range(1008)]
