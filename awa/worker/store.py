"""Thin adapter between the runtime and the storage client's lease API.

The runtime only talks to this class, so a change in the storage client's
signatures is absorbed here. It also knows how to open the two dedicated
connections the runtime keeps outside the client's pool (LISTEN and the
maintenance leader's advisory lock).
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Sequence
from typing import Any

import psycopg

from awa.errors import ValidationError
from awa.worker.claim_batcher import ClaimBatcher

# Page sizes for the maintenance calls; a full page means "call again".
PROMOTE_LIMIT = 1000
RESCUE_LIMIT = 1000


def _accepts(func: Any, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class StoreAdapter:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.schema: str = client.schema
        self._claim_takes_aging = _accepts(client.claim, "priority_aging_interval_ms")
        # Claims of several queues coalesce into one round trip (claim_many.sql)
        # when the client exposes the core claim with per-queue limits.
        core = getattr(client, "_core", None)
        self._coalesce = (
            hasattr(client, "_drive")
            and core is not None
            and _accepts(core.claim, "limits")
            and inspect.iscoroutinefunction(client._drive)
        )
        self.claims = ClaimBatcher(self._send_claims)

    # -- connections outside the pool ----------------------------------------
    @property
    def pool(self) -> Any:
        return getattr(self.client, "_pool", None)

    @property
    def owns_pool(self) -> bool:
        return bool(getattr(self.client, "_owns_pool", False))

    def connect_args(self) -> tuple[str, dict[str, Any]]:
        pool = self.pool
        if pool is None:
            raise ValidationError(
                "the worker runtime needs a client built on a database URL or a connection pool, "
                "not on a single connection"
            )
        return pool.conninfo, dict(pool.kwargs or {})

    async def connect(self) -> psycopg.AsyncConnection:
        conninfo, kwargs = self.connect_args()
        kwargs["autocommit"] = True
        return await psycopg.AsyncConnection.connect(conninfo, **kwargs)

    @property
    def notify_channel(self) -> str:
        return self.client.notify_channel

    # -- lease API -----------------------------------------------------------
    async def claim(self, queue: str | list[str], limit: int, *, deadline_ms: int, aging_ms: int) -> list[Any]:
        """Claim up to ``limit`` jobs of ``queue`` (the caller holds that many slots).

        One queue: batched with the other queues' requests and pipelined in
        claim groups (:mod:`awa.worker.claim_batcher`) when the client exposes
        the claim with per-queue limits; otherwise one statement per request.
        A list (the partitions of a shared entry, ADR 0014): one statement of
        its own, at most ``limit`` jobs from all of them together; it is not
        coalesced, since a statement has one total and another request's cap
        would let this one take more than its slots.
        """
        if isinstance(queue, str) and self._coalesce:
            return await self.claims.claim(queue, limit, (deadline_ms, aging_ms))
        queues = [queue] if isinstance(queue, str) else list(queue)
        kwargs: dict[str, Any] = {"deadline_ms": deadline_ms or None}
        if self._claim_takes_aging:
            kwargs["priority_aging_interval_ms"] = aging_ms
        return list(await self.client.claim(queues, limit, **kwargs))

    async def _send_claims(self, queues: list[str], limits: list[int], setting: Hashable) -> Sequence[Any]:
        deadline_ms, aging_ms = setting  # type: ignore[misc]
        return await self.client._drive(
            self.client._core.claim(queues, sum(limits), deadline_ms or None, aging_ms, limits=limits), tx=False
        )

    async def complete_many(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        result = await self.client.complete_many(list(pairs))
        return _as_flags(result, pairs)

    async def heartbeat_many(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        result = await self.client.heartbeat_many(list(pairs))
        return _as_flags(result, pairs)

    async def heartbeat(self, job_id: int, run_lease: int, progress: dict[str, Any] | None) -> bool:
        return bool(await self.client.heartbeat(job_id, run_lease, progress=progress))

    async def retry(self, job_id: int, run_lease: int, after_seconds: float | None, error: str | None) -> bool:
        return bool(await self.client.retry(job_id, run_lease, after_seconds=after_seconds, error=error))

    async def fail(self, job_id: int, run_lease: int, error: str) -> bool:
        return bool(await self.client.fail(job_id, run_lease, error))

    async def snooze(self, job_id: int, run_lease: int, seconds: float) -> bool:
        return bool(await self.client.snooze(job_id, run_lease, seconds))

    async def cancel(self, job_id: int, run_lease: int) -> bool:
        return bool(await self.client.cancel(job_id, run_lease))

    async def release(self, job_id: int, run_lease: int) -> bool:
        """Give an unfinished attempt back (shutdown timeout): runnable again at
        once, and - like a snooze - without using up one of its attempts."""
        release = getattr(self.client, "release", None)
        if release is not None:
            return bool(await release(job_id, run_lease))
        return await self.snooze(job_id, run_lease, 0.0)

    async def rescue_expired(self, staleness_ms: int) -> list[Any]:
        return list(await self.client.rescue_expired(heartbeat_timeout=staleness_ms / 1000, limit=RESCUE_LIMIT))

    async def promote_due(self) -> int:
        return int(await self.client.promote_due(limit=PROMOTE_LIMIT))


def _as_flags(result: Any, pairs: Sequence[tuple[int, int]]) -> list[bool]:
    """Normalise a batch result (flags, or the ids/pairs that took effect) to flags."""
    if result is None:
        return [True] * len(pairs)
    if isinstance(result, int) and not isinstance(result, bool):
        if result == len(pairs):
            return [True] * len(pairs)
        raise TypeError("batch result is a count; the worker needs per-job results")
    items = list(result)
    if len(items) == len(pairs) and all(isinstance(x, bool) for x in items):
        return items
    done = {x if isinstance(x, int) else x[0] for x in items}
    return [job_id in done for job_id, _ in pairs]
