"""Shared helpers for tests/test_worker_*.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from awa.client import AsyncClient, Client

# The client classes carry the worker API (AsyncWorkerMixin / WorkerMixin).
WorkerAsyncClient = AsyncClient
WorkerClient = Client

FAST = dict(
    poll_interval_ms=50,
    heartbeat_interval_ms=100,
    heartbeat_staleness_ms=600,
    rescue_interval_ms=100,
    promote_interval_ms=50,
    leader_election_interval_ms=100,
)


@dataclass
class Ping:
    n: int


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def wait_until(
    predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0, step: float = 0.02
) -> None:
    """Poll ``predicate`` (a plain check, or a coroutine for checks that query) until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def states(url: str, schema: str = "awa") -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f'SELECT state::text, count(*) FROM "{schema}".jobs GROUP BY 1').fetchall()
    return {state: count for state, count in rows}


async def count_state(client: Any, state: str, queue: str | None = None) -> int:
    return len(await client.list_jobs(state=state, queue=queue, limit=100_000))


T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


class ManualClock:
    """A clock the test moves by hand (``Client(clock=...)``), from ``T0``."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float = 0.0, *, hours: float = 0.0) -> None:
        self.now += dt.timedelta(seconds=seconds, hours=hours)
