"""What the worker runtime needs from storage, in one small async interface.

:class:`WorkerStore` runs the storage operations of
:class:`~awa.storage.core.StorageCore` on an
:class:`~awa.storage.drivers.AsyncExecutor`: claims (batched and pipelined by
the claim batcher), lease-guarded outcomes, heartbeats and maintenance. It
also opens the dedicated connections the runtime keeps outside the pool
(LISTEN).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import psycopg

from awa.storage.core import StorageCore, backoff_seconds
from awa.storage.drivers import AsyncExecutor, run_in
from awa.storage.models import Job
from awa.worker.claim_batcher import ClaimBatcher

# Page sizes for the maintenance calls; a full page means "call again".
PROMOTE_LIMIT = 1000
RESCUE_LIMIT = 1000


class WorkerStore:
    def __init__(self, core: StorageCore, executor: AsyncExecutor) -> None:
        self.core = core
        self.executor = executor
        self.claims = ClaimBatcher(self._send_claims)
        self.metrics: Any = None  # the runtime's WorkerMetrics (rescues are counted here)

    @property
    def schema(self) -> str:
        return self.core.schema

    @property
    def notify_channel(self) -> str:
        return self.core.channel

    async def connect(self) -> psycopg.AsyncConnection:
        """A dedicated autocommit connection outside the pool."""
        return await self.executor.connect()

    async def _run(self, op: Any) -> Any:
        return await self.executor.run(op, tx=False)

    # -- claims ------------------------------------------------------------------
    async def claim(self, queue: str | list[str], limit: int, *, deadline_ms: int, aging_ms: int) -> list[Job]:
        """Claim up to ``limit`` jobs of ``queue`` (the caller holds that many slots).

        One queue: batched with the other queues' requests and pipelined in
        claim groups (:mod:`awa.worker.claim_batcher`). A list (the partitions
        of a shared entry, ADR 0014): one statement of its own, at most
        ``limit`` jobs from all of them together; it is not coalesced, since a
        statement has one total and another request's cap would let this one
        take more than its slots.
        """
        if isinstance(queue, str):
            return list(await self.claims.claim(queue, limit, (deadline_ms, aging_ms)))
        return list(await self._run(self.core.claim(list(queue), limit, deadline_ms or None, aging_ms)))

    async def _send_claims(self, queues: list[str], limits: list[int], setting: Hashable) -> Sequence[Job]:
        deadline_ms, aging_ms = setting  # type: ignore[misc]
        return await self._run(self.core.claim(queues, sum(limits), deadline_ms or None, aging_ms, limits=limits))

    # -- lease-guarded calls: each returns whether the lease still held ------------
    async def complete_many(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        return await self._run(self.core.complete_many(pairs))

    async def heartbeat_many(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        return await self._run(self.core.heartbeat_many(pairs))

    async def heartbeat(self, job_id: int, run_lease: int, progress: dict[str, Any] | None) -> bool:
        return await self._run(self.core.heartbeat(job_id, run_lease, progress))

    async def retry(self, job_id: int, run_lease: int, after_seconds: float | None, error: str | None) -> bool:
        return await self._run(self.core.retry(job_id, run_lease, after_seconds, error))

    async def fail(self, job_id: int, run_lease: int, error: str) -> bool:
        return await self._run(self.core.fail(job_id, run_lease, error))

    async def snooze(self, job_id: int, run_lease: int, seconds: float) -> bool:
        return await self._run(self.core.snooze(job_id, run_lease, seconds))

    async def cancel(self, job_id: int, run_lease: int) -> bool:
        return await self._run(self.core.cancel(job_id, run_lease))

    async def release(self, job_id: int, run_lease: int) -> bool:
        """Give an unfinished attempt back (shutdown timeout): runnable again at
        once, and - like a snooze - without using up one of its attempts."""
        return await self.snooze(job_id, run_lease, 0.0)

    def settle_sync(self, job_id: int, run_lease: int, completed: bool) -> bool:
        """From a plain thread, after the event loop is gone: complete (or
        release) one attempt over a short-lived connection of its own."""
        conninfo, kwargs = self.executor.connect_args()
        kwargs["autocommit"] = True
        op = self.core.complete(job_id, run_lease) if completed else self.core.snooze(job_id, run_lease, 0.0)
        with psycopg.connect(conninfo, **kwargs) as conn:
            return bool(run_in(conn, op))

    # -- maintenance ---------------------------------------------------------------
    async def rescue_expired(self, staleness_ms: int) -> list[Any]:
        rescued = await self._run(self.core.rescue_expired(staleness_ms / 1000, RESCUE_LIMIT))
        if rescued and self.metrics is not None:
            queues = await self._run(self.core.job_queues([job_id for job_id, _lease, _outcome in rescued]))
            per_queue: dict[str, int] = {}
            for queue in queues.values():
                per_queue[queue] = per_queue.get(queue, 0) + 1
            for queue, n in per_queue.items():
                self.metrics.rescued(queue, n)
        return rescued

    async def acquire_leader_lease(self, role: str, holder: str, ttl_s: float) -> bool:
        return await self._run(self.core.acquire_leader_lease(role, holder, ttl_s))

    async def release_leader_lease(self, role: str, holder: str) -> bool:
        return await self._run(self.core.release_leader_lease(role, holder))

    async def promote_due(self) -> int:
        return await self._run(self.core.promote_due(PROMOTE_LIMIT))

    async def prune_terminal(self, default: Any, per_queue: Any, limit: int) -> list[tuple[str, str, int]]:
        return await self._run(self.core.prune_terminal(default, per_queue, limit))

    async def prune_dlq(self, retention_s: float, limit: int) -> int:
        return await self._run(self.core.prune_dlq(retention_s, limit))

    async def rollup_terminal_counts(self, lag_s: float) -> int:
        return await self._run(self.core.rollup_terminal_counts(lag_s))

    async def registered_partitions(self) -> dict[str, int]:
        return await self._run(self.core.get_partitions(None))

    async def register_partitions(self, logical_queue: str, partitions: int) -> tuple[int, bool]:
        return await self._run(self.core.register_partitions(logical_queue, partitions))

    async def lift_fences(self) -> int:
        """The repartition lift step over every logical queue (ADR 0024)."""
        return await self._run(self.core.lift_fences(None))

    async def partition_spans(self) -> dict[str, tuple[int, int, int]]:
        return await self._run(self.core.partition_spans())

    async def finish(self, job_id: int, run_lease: int, mode: str, error: str | None, delay: float | None) -> str:
        """A lease-guarded fail / retry / snooze; the outcome word ('stale',
        'failed', 'dead_lettered', 'retryable', 'scheduled', 'available')."""
        return await self._run(self.core.finish(job_id, run_lease, mode, error, delay))

    def backoff_seconds(self, attempt: int) -> float:
        """The retry delay the database would pick for ``attempt`` (jitter included)."""
        return backoff_seconds(attempt, float(self.core.jitter()))
