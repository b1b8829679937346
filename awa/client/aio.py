"""The asyncio client: an AsyncConnectionPool (or one AsyncConnection) plus the async driver.

It runs the very same operation generators as :class:`awa.client.Client`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from awa.client.api import ClientAPI
from awa.client.compat import CompatAPI
from awa.client.transaction import Transaction
from awa.client.worker_api import AsyncWorkerMixin
from awa.storage.core import StorageCore
from awa.storage.drivers import AsyncExecutor
from awa.storage.migrate import migrate_async


class AsyncClient(AsyncWorkerMixin, CompatAPI, ClientAPI):
    """Async client; every public method returns an awaitable.

    ``meter``: an OpenTelemetry Meter for the enqueue counters (default: the
    global one, when installed). The worker API (``task``, ``start``,
    ``shutdown``) runs the worker runtime on the caller's event loop.
    """

    def __init__(
        self,
        database_url_or_pool: str | AsyncConnectionPool | psycopg.AsyncConnection,
        *,
        schema: str = "awa",
        clock: Callable[[], dt.datetime] | None = None,
        jitter: Callable[[], float] | None = None,
        max_connections: int = 10,
        min_connections: int = 1,
        meter: Any = None,
    ) -> None:
        self._core = StorageCore(schema, clock, jitter, meter)
        self._executor = AsyncExecutor(
            database_url_or_pool, name=f"awa-{schema}", min_size=min_connections, max_size=max_connections,
            schema=schema,
        )

    def connection(self) -> Any:
        """A pooled connection context (for transactional enqueue with ``conn=``)."""
        return self._executor.connection()

    def transaction(self) -> Transaction:
        """A transaction on one pooled connection (awa-pg's ``Transaction``):
        ``async with await client.transaction() as tx: await tx.insert(...)``
        (``tx = await client.transaction()`` opens it; ``async with
        client.transaction() as tx`` works too). See :mod:`awa.client.transaction`."""
        return Transaction(self)

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions this call applied.

        Runs on one of the client's own connections (a pooled one, or the
        single ``AsyncConnection`` it was built on), so its credentials, pool
        ``kwargs`` and session settings all apply. A single connection must
        have no transaction in progress (each migration commits on its own);
        its autocommit setting is left unchanged.
        """
        executor = self._executor
        if executor.pool is not None:
            async with executor.connection() as pooled:
                return await migrate_async(pooled, self.schema)
        return await migrate_async(executor.conn, self.schema)

    async def close(self) -> None:
        await self._executor.close()

    async def __aenter__(self) -> AsyncClient:
        await self._executor.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
