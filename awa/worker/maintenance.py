"""The maintenance leader: one worker per schema rescues and promotes.

Every runtime competes for one session advisory lock per schema on a
dedicated connection; the holder runs rescue (stale heartbeats, passed
deadlines) every ``rescue_interval_ms`` and promotion of due scheduled and
retryable jobs every ``promote_interval_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
import xxhash

from awa.worker.store import PROMOTE_LIMIT, RESCUE_LIMIT, WorkerStore

log = logging.getLogger("awa.worker")


def leader_lock_key(schema: str) -> int:
    """The advisory lock of one schema's leader (signed: PostgreSQL takes bigint)."""
    return xxhash.xxh64_intdigest(f"awa.worker.maintenance:{schema}".encode()) - (1 << 63)


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
        self.is_leader = False
        self.conn: psycopg.AsyncConnection | None = None

    async def run(self) -> None:
        opts = self.options
        key = leader_lock_key(self.store.schema)
        next_rescue = 0.0
        while True:
            try:
                if not self.is_leader:
                    if not await self._try_lead(key):
                        await asyncio.sleep(opts.leader_election_interval_ms / 1000)
                        continue
                    log.info("this worker is now the maintenance leader")
                else:
                    # A dead session has dropped the lock: prove it is still ours.
                    assert self.conn is not None
                    await self.conn.execute("SELECT 1")
                now = time.monotonic()
                if now >= next_rescue:
                    await self._rescue()
                    next_rescue = now + opts.rescue_interval_ms / 1000
                if await self._promote():
                    self.on_promoted()
                if self.retention is not None:
                    await self.retention.tick()
                await asyncio.sleep(opts.promote_interval_ms / 1000)
            except asyncio.CancelledError:
                await self._unlock(key)
                raise
            except Exception:
                log.warning("maintenance round failed", exc_info=True)
                if self.conn is not None and self.conn.closed:
                    self.is_leader = False
                    self.conn = None
                await asyncio.sleep(opts.leader_election_interval_ms / 1000)

    async def _try_lead(self, key: int) -> bool:
        if self.conn is None or self.conn.closed:
            self.conn = await self.store.connect()
        cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cur.fetchone()
        self.is_leader = bool(row and row[0])
        return self.is_leader

    async def _rescue(self) -> None:
        while len(await self.store.rescue_expired(self.options.heartbeat_staleness_ms)) >= RESCUE_LIMIT:
            pass  # a full page: more may be waiting

    async def _promote(self) -> int:
        promoted = total = await self.store.promote_due()
        while promoted >= PROMOTE_LIMIT:
            promoted = await self.store.promote_due()
            total += promoted
        return total

    async def _unlock(self, key: int) -> None:
        if self.is_leader and self.conn is not None and not self.conn.closed:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.conn.execute("SELECT pg_advisory_unlock(%s)", (key,)))

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
        self.is_leader = False
