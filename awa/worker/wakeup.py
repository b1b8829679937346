"""Wake-ups: ONE dedicated LISTEN connection per runtime wakes the claimers of any queue.

Producers NOTIFY the schema's channel with the physical queue name as the
payload; polling every ``poll_interval_ms`` is the fallback while the
connection is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from awa.worker.store import WorkerStore

log = logging.getLogger("awa.worker")


class Listener:
    """``on_notify(queue)`` for every notification; ``on_reconnect()`` after a
    lost connection is back (anything may have arrived meanwhile)."""

    def __init__(
        self, store: WorkerStore, on_notify: Callable[[str], None], on_reconnect: Callable[[], None], outage: Any = None
    ) -> None:
        self.store = store
        self.channel = store.notify_channel
        self.on_notify = on_notify
        self.on_reconnect = on_reconnect
        self.outage = outage  # an OutageLog: connection errors logged once per outage
        self.alive = False
        self.conn: psycopg.AsyncConnection | None = None

    async def connect(self) -> None:
        """LISTEN now: an insert after this point wakes the claimers."""
        conn = await self.store.connect()
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self.conn = conn
        self.alive = True

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    await self.connect()
                    if self.outage is not None:
                        self.outage.ok()
                    self.on_reconnect()
                backoff = 0.1
                assert self.conn is not None
                async for note in self.conn.notifies():
                    self.on_notify(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.alive = False
                if self.outage is not None:
                    self.outage.failed("LISTEN (polling until it is back)", exc)
                else:
                    log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
        self.conn = None
        self.alive = False
