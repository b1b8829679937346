"""The maintenance leader: one worker per schema rescues and promotes.

Leadership is a lease row in the database (``leader_leases``, ADR 0019):
every runtime tries to take it every ``leader_election_interval_ms``; the
holder renews it every third of ``leader_lease_ms`` and, while its last
renewal is younger than one lease, runs rescue (stale heartbeats, passed
deadlines) every ``rescue_interval_ms`` and promotion of due scheduled and
retryable jobs every ``promote_interval_ms``, each round followed by the
repartition lift step (ADR 0024). Take-over and renewal are one
statement each, decided by the database's clock, so a frozen holder (SIGSTOP,
a stuck event loop) loses the role after at most one lease.

Two leaders at once (a holder that resumes before noticing it lost the lease)
are harmless: rescue, promotion and lifting are lease-guarded or idempotent row updates that any
number of workers may run concurrently. Leadership only keeps the work from
being done N times over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from awa.worker.store import PROMOTE_LIMIT, RESCUE_LIMIT, WorkerStore

log = logging.getLogger("awa.worker")

ROLE = "maintenance"


def holder_id() -> str:
    """A holder name unique to this runtime: host, process and a random part."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaderLease:
    """This runtime's view of the maintenance lease.

    ``held()`` is true only while the last successful renewal *started* less
    than one lease ago by the local monotonic clock: the database's expiry
    is at least that late, so a holder never believes in a lease that the
    database may already have handed to someone else.
    """

    def __init__(self, store: WorkerStore, lease_ms: int, holder: str | None = None) -> None:
        self.store = store
        self.lease_s = lease_ms / 1000
        self.holder = holder or holder_id()
        self._renewed_at: float | None = None  # monotonic start of the last renewal that held

    def held(self) -> bool:
        return self._renewed_at is not None and time.monotonic() - self._renewed_at < self.lease_s

    def renewal_due(self) -> bool:
        return self._renewed_at is None or time.monotonic() - self._renewed_at >= self.lease_s / 3

    async def acquire(self) -> bool:
        """Take or renew the lease (one statement); whether it is ours now."""
        started = time.monotonic()
        ok = await self.store.acquire_leader_lease(ROLE, self.holder, self.lease_s)
        self._renewed_at = started if ok else None
        return ok

    async def release(self) -> None:
        if self._renewed_at is not None:
            self._renewed_at = None
            await self.store.release_leader_lease(ROLE, self.holder)


class MaintenanceLeader:
    """Competes for leadership and, while leader, runs the maintenance passes.

    ``on_promoted`` is called when a pass made jobs available (claimers wake).
    """

    def __init__(
        self, store: WorkerStore, options: Any, on_promoted: Callable[[], None], retention: Any = None
    ) -> None:
        self.store = store
        self.retention = retention  # awa.worker.retention.Retention: ticked once per round
        self.options = options
        self.on_promoted = on_promoted
        self.lease = LeaderLease(store, options.leader_lease_ms)
        self._was_leader = False

    @property
    def is_leader(self) -> bool:
        return self.lease.held()

    async def run(self) -> None:
        opts = self.options
        next_rescue = 0.0
        # Between rounds the leader sleeps at most a third of the lease: renewal never waits on promotion.
        round_s = min(opts.promote_interval_ms, opts.leader_lease_ms / 3) / 1000
        while True:
            try:
                if self.lease.renewal_due() and not await self.lease.acquire():
                    if self._was_leader:
                        log.warning("this worker lost the maintenance lease")
                    self._was_leader = False
                    await asyncio.sleep(opts.leader_election_interval_ms / 1000)
                    continue
                if not self._was_leader:
                    log.info("this worker is now the maintenance leader")
                    self._was_leader = True
                now = time.monotonic()
                if now >= next_rescue and self.lease.held():
                    await self._rescue()
                    next_rescue = now + opts.rescue_interval_ms / 1000
                if self.lease.held() and await self._promote():
                    self.on_promoted()
                # The repartition lift step (ADR 0024): a lifted fence lets its lane hand out more.
                if self.lease.held() and await self.store.lift_fences():
                    self.on_promoted()
                if self.retention is not None and self.lease.held():
                    await self.retention.tick()
                await asyncio.sleep(round_s)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.lease.release())
                raise
            except Exception:
                log.warning("maintenance round failed", exc_info=True)
                await asyncio.sleep(opts.leader_election_interval_ms / 1000)

    async def _rescue(self) -> None:
        while len(await self.store.rescue_expired(self.options.heartbeat_staleness_ms)) >= RESCUE_LIMIT:
            if not self.lease.held():
                return
            # a full page: more may be waiting

    async def _promote(self) -> int:
        promoted = total = await self.store.promote_due()
        while promoted >= PROMOTE_LIMIT and self.lease.held():
            promoted = await self.store.promote_due()
            total += promoted
        return total

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.lease.release()
