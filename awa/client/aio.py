"""The asyncio client: an AsyncConnectionPool (or one AsyncConnection) plus the async driver.

It runs the very same operation generators as :class:`awa.client.Client`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from awa.client import _batch
from awa.client._api import ClientAPI
from awa.client._core import ClientCore, Copy, Op, Result, result_names
from awa.errors import ValidationError
from awa.worker.mixin import AsyncWorkerMixin

_COPY_BLOCK = 1 << 18


async def run_async(conn: psycopg.AsyncConnection, op: Op) -> Any:
    try:
        step = next(op)
        while True:
            if type(step) is Copy:
                async with conn.cursor() as cur, cur.copy(step.sql) as copy:
                    data = step.data
                    for i in range(0, len(data), _COPY_BLOCK):
                        await copy.write(data[i : i + _COPY_BLOCK])
                result: Result | None = None
            else:
                cur = await conn.execute(step.sql, step.params)
                names = result_names(cur)
                rows = await cur.fetchall() if names is not None else []
                result = Result(names or [], rows, cur.rowcount)
            step = op.send(result)
    except StopIteration as done:
        return done.value
    finally:
        op.close()


async def run_in_async(conn: psycopg.AsyncConnection, op: Op) -> Any:
    if conn.autocommit:
        async with conn.transaction():
            return await run_async(conn, op)
    return await run_async(conn, op)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    _batch.use_fast_json(conn)


class AsyncClient(AsyncWorkerMixin, ClientAPI):
    """Async client; every public method returns an awaitable.

    The worker API (``task``, ``start``, ``shutdown``) comes from the worker
    runtime's :class:`~awa.worker.mixin.AsyncWorkerMixin`.
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
        # meter: an OpenTelemetry Meter for the enqueue counters (default: the global one, when installed)
        self._core = ClientCore(schema, clock, jitter, meter)
        self._pool: AsyncConnectionPool | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._owns_pool = False
        self._opened = False
        target = database_url_or_pool
        if isinstance(target, str):
            self._pool = AsyncConnectionPool(
                target,
                min_size=min_connections,
                max_size=max_connections,
                open=False,
                name=f"awa-{schema}",
                kwargs={"autocommit": True},  # one round trip for single-statement calls
                configure=_configure,
            )
            self._owns_pool = True
        elif isinstance(target, AsyncConnectionPool):
            self._pool = target
            self._opened = True
        elif isinstance(target, psycopg.AsyncConnection):
            self._conn = target
        else:
            raise ValidationError(
                "AsyncClient needs a database URL, a psycopg_pool.AsyncConnectionPool or a psycopg.AsyncConnection"
            )

    async def _ensure_open(self) -> None:
        if self._pool is not None and not self._opened:
            await self._pool.open()
            self._opened = True

    async def _drive(self, op: Op, conn: Any = None, tx: bool = True) -> Any:
        if conn is not None:
            if not isinstance(conn, psycopg.AsyncConnection):
                op.close()
                raise ValidationError("conn must be a psycopg.AsyncConnection for the AsyncClient")
            return await run_in_async(conn, op)
        if self._pool is not None:
            await self._ensure_open()
            async with self._pool.connection() as pooled:
                if tx and pooled.autocommit:
                    async with pooled.transaction():
                        return await run_async(pooled, op)
                return await run_async(pooled, op)
        assert self._conn is not None
        async with self._conn.transaction():
            return await run_async(self._conn, op)

    def connection(self):
        """A pooled connection context (for transactional enqueue with ``conn=``)."""
        if self._pool is None:
            raise ValidationError("this client was built on a single connection; use it directly")
        return _OpenThenConnect(self)

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions this call applied.

        Runs on one of the client's own connections (a pooled one, or the
        single ``AsyncConnection`` it was built on), so its credentials, pool
        ``kwargs`` and session settings all apply. A single connection must
        have no transaction in progress (each migration commits on its own);
        its autocommit setting is left unchanged.
        """
        from awa.storage.migrate import migrate_async

        if self._pool is not None:
            await self._ensure_open()
            async with self._pool.connection() as pooled:
                return await migrate_async(pooled, self.schema)
        assert self._conn is not None
        return await migrate_async(self._conn, self.schema)

    async def close(self) -> None:
        if self._owns_pool and self._pool is not None and self._opened:
            await self._pool.close()

    async def __aenter__(self) -> AsyncClient:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _OpenThenConnect:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._cm: Any = None

    async def __aenter__(self) -> psycopg.AsyncConnection:
        await self._client._ensure_open()
        assert self._client._pool is not None
        self._cm = self._client._pool.connection()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)
