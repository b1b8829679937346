"""The synchronous client: a ConnectionPool (or one Connection) plus the sync driver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from awa.client import _batch
from awa.client._api import ClientAPI
from awa.client._core import ClientCore, Copy, Op, Result, result_names
from awa.errors import ValidationError
from awa.worker.mixin import WorkerMixin

_COPY_BLOCK = 1 << 18  # characters per write: the server parses while we send


def run_sync(conn: psycopg.Connection, op: Op) -> Any:
    """Drive one operation generator on ``conn`` (no transaction handling here)."""
    try:
        step = next(op)
        while True:
            if type(step) is Copy:
                with conn.cursor() as cur, cur.copy(step.sql) as copy:
                    data = step.data
                    for i in range(0, len(data), _COPY_BLOCK):
                        copy.write(data[i : i + _COPY_BLOCK])
                result: Result | None = None
            else:
                cur = conn.execute(step.sql, step.params)
                names = result_names(cur)
                result = Result(names or [], cur.fetchall() if names is not None else [], cur.rowcount)
            step = op.send(result)
    except StopIteration as done:
        return done.value
    finally:
        op.close()


def run_in(conn: psycopg.Connection, op: Op) -> Any:
    """Run inside the caller's connection: their transaction, their commit.

    An autocommit connection gets one transaction around the operation so a
    batch stays all-or-nothing.
    """
    if conn.autocommit:
        with conn.transaction():
            return run_sync(conn, op)
    return run_sync(conn, op)


def _configure(conn: psycopg.Connection) -> None:
    _batch.use_fast_json(conn)


class Client(WorkerMixin, ClientAPI):
    """Sync client. ``Client(url)`` opens its own pool; a pool or a connection may be passed.

    The worker API (``task``, ``start``, ``shutdown``) comes from the worker
    runtime's :class:`~awa.worker.mixin.WorkerMixin`.
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
        # meter: an OpenTelemetry Meter for the enqueue counters (default: the global one, when installed)
        self._core = ClientCore(schema, clock, jitter, meter)
        self._pool: ConnectionPool | None = None
        self._conn: psycopg.Connection | None = None
        self._owns_pool = False
        target = database_url_or_pool
        if isinstance(target, str):
            self._pool = ConnectionPool(
                target,
                min_size=min_connections,
                max_size=max_connections,
                open=True,
                name=f"awa-{schema}",
                kwargs={"autocommit": True},  # one round trip for single-statement calls
                configure=_configure,
            )
            self._owns_pool = True
        elif isinstance(target, ConnectionPool):
            self._pool = target
        elif isinstance(target, psycopg.Connection):
            self._conn = target
        else:
            raise ValidationError("Client needs a database URL, a psycopg_pool.ConnectionPool or a psycopg.Connection")

    def _drive(self, op: Op, conn: Any = None, tx: bool = True) -> Any:
        if conn is not None:
            if not isinstance(conn, psycopg.Connection):
                raise ValidationError("conn must be a psycopg.Connection for the sync Client")
            return run_in(conn, op)
        if self._pool is not None:
            with self._pool.connection() as pooled:  # commits on success, rolls back on error
                if tx and pooled.autocommit:
                    with pooled.transaction():
                        return run_sync(pooled, op)
                return run_sync(pooled, op)
        assert self._conn is not None
        with self._conn.transaction():
            return run_sync(self._conn, op)

    def connection(self):
        """A pooled connection context (for transactional enqueue with ``conn=``)."""
        if self._pool is None:
            raise ValidationError("this client was built on a single connection; use it directly")
        return self._pool.connection()

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions this call applied.

        Runs on one of the client's own connections (a pooled one, or the
        single ``Connection`` it was built on). A single connection must have
        no transaction in progress (each migration commits on its own); its
        autocommit setting is left unchanged.
        """
        from awa.storage.migrate import migrate

        if self._pool is not None:
            with self._pool.connection() as pooled:
                return migrate(pooled, self.schema)
        assert self._conn is not None
        return migrate(self._conn, self.schema)

    def close(self) -> None:
        if self._owns_pool and self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
