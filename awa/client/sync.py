"""The synchronous client: a ConnectionPool (or one Connection) plus the sync driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from awa.client.api import ClientAPI
from awa.client.compat import CompatAPI
from awa.client.transaction import SyncTransaction
from awa.client.worker_api import WorkerMixin
from awa.storage.core import StorageCore
from awa.storage.drivers import SyncExecutor
from awa.storage.migrate import migrate


class Client(WorkerMixin, CompatAPI, ClientAPI):
    """Sync client. ``Client(url)`` opens its own pool; a pool or a connection may be passed.

    ``meter``: an OpenTelemetry Meter for the enqueue counters (default: the
    global one, when installed). The worker API (``task``, ``start``,
    ``shutdown``) runs the worker runtime on a background thread.
    """

    def __init__(
        self,
        database_url_or_pool: str | ConnectionPool | psycopg.Connection,
        *,
        schema: str = "awa",
        clock: Callable[[], dt.datetime] | None = None,
        jitter: Callable[[], float] | None = None,
        max_connections: int = 10,
        min_connections: int = 1,
        meter: Any = None,
    ) -> None:
        self._core = StorageCore(schema, clock, jitter, meter)
        self._executor = SyncExecutor(
            database_url_or_pool, name=f"awa-{schema}", min_size=min_connections, max_size=max_connections,
            schema=schema,
        )

    def connection(self) -> Any:
        """A pooled connection context (for transactional enqueue with ``conn=``)."""
        return self._executor.connection()

    def transaction(self) -> SyncTransaction:
        """Open a transaction on one pooled connection (awa-pg's ``SyncTransaction``):
        ``with client.transaction() as tx: tx.execute(...); tx.insert(...)``
        commits both or neither. See :mod:`awa.client.transaction`."""
        return SyncTransaction(self)

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions this call applied.

        Runs on one of the client's own connections (a pooled one, or the
        single ``Connection`` it was built on). A single connection must have
        no transaction in progress (each migration commits on its own); its
        autocommit setting is left unchanged.
        """
        executor = self._executor
        if executor.pool is not None:
            with executor.pool.connection() as pooled:
                return migrate(pooled, self.schema)
        return migrate(executor.conn, self.schema)

    def close(self) -> None:
        self._executor.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
