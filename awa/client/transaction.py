"""awa-pg's transactions: enqueue jobs atomically with the application's own writes.

``client.transaction()`` takes one connection from the client's pool and opens
a transaction on it. ``tx.insert`` / ``tx.insert_many`` enqueue on that
connection (the client's own insert and COPY paths with ``conn=``), and
``tx.execute`` / ``fetch_one`` / ``fetch_optional`` / ``fetch_all`` run the
application's SQL there, with PostgreSQL's ``$1, $2, …`` placeholders as in
awa-pg. ``commit()`` or ``rollback()`` ends it and gives the connection back;
as a context manager it commits on a clean exit and rolls back on an
exception. ``tx.connection`` is the psycopg connection itself, for an ORM or
a driver of the application's own.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

import awa.errors
from awa.errors import AwaError, DatabaseError

FINISHED = "Transaction already committed or rolled back"
NO_ROW = "no rows returned by a query that expected to return at least one row"


def _param(value: Any) -> Any:
    # awa-pg binds every argument as JSON; here a dict travels as jsonb and
    # everything else as psycopg adapts it (lists as arrays).
    return Jsonb(value) if isinstance(value, dict) else value


def _params(args: tuple[Any, ...]) -> list[Any] | None:
    return [_param(a) for a in args] if args else None


def database_error(exc: psycopg.Error) -> AwaError:
    """awa-pg's mapping: a unique violation is ``UniqueConflict`` (where the
    unique-jobs module defines it), any other failure ``DatabaseError``."""
    conflict = getattr(awa.errors, "UniqueConflict", None)
    if conflict is not None and getattr(exc, "sqlstate", None) == "23505":
        return conflict(str(exc))
    return DatabaseError(str(exc).strip() or type(exc).__name__)


class _Base:
    _conn: Any
    _client: Any

    @property
    def connection(self) -> Any:
        """The psycopg connection this transaction runs on."""
        if self._conn is None:
            raise AwaError(FINISHED)
        return self._conn

    @property
    def active(self) -> bool:
        return self._conn is not None

    def _insert_opts(self, opts: dict[str, Any]) -> dict[str, Any]:
        if "conn" in opts:
            raise TypeError("transaction inserts run on the transaction's connection; do not pass conn=")
        return {**opts, "conn": self.connection}


class SyncTransaction(_Base):
    """A transaction of the sync :class:`~awa.client.Client` (awa-pg's ``SyncTransaction``)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        executor = client.executor
        self._pool = executor.pool
        conn = self._pool.getconn() if self._pool is not None else executor.conn
        try:
            self._tx = conn.transaction()
            self._tx.__enter__()
        except BaseException:
            if self._pool is not None:
                self._pool.putconn(conn)
            raise
        self._conn = conn

    # -- the application's SQL --------------------------------------------
    def _run(self, query: str, args: tuple[Any, ...]) -> Any:
        cur = psycopg.RawCursor(self.connection, row_factory=dict_row)
        try:
            cur.execute(query, _params(args))
        except psycopg.Error as exc:
            cur.close()
            raise database_error(exc) from exc
        return cur

    def execute(self, query: str, *args: Any) -> int:
        """Run one statement; the number of rows it affected."""
        with self._run(query, args) as cur:
            return max(cur.rowcount, 0)

    def fetch_one(self, query: str, *args: Any) -> dict[str, Any]:
        """The first row as a dict; :class:`DatabaseError` when there is none."""
        with self._run(query, args) as cur:
            row = cur.fetchone()
        if row is None:
            raise DatabaseError(NO_ROW)
        return row

    def fetch_optional(self, query: str, *args: Any) -> dict[str, Any] | None:
        with self._run(query, args) as cur:
            return cur.fetchone()

    def fetch_all(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with self._run(query, args) as cur:
            return cur.fetchall()

    # -- enqueue ---------------------------------------------------------
    def insert(self, args: Any, **opts: Any) -> Any:
        """:meth:`Client.insert` inside this transaction."""
        return self._client.insert(args, **self._insert_opts(opts))

    def insert_many(self, jobs: Any, **opts: Any) -> Any:
        """Insert many jobs inside this transaction (the COPY path); the jobs in input order."""
        return self._client.insert_many_copy(jobs, **self._insert_opts(opts))

    # -- ending ----------------------------------------------------------
    def _end(self, commit: bool) -> None:
        conn = self._conn
        if conn is None:
            raise AwaError(FINISHED)
        self._conn = None
        try:
            if commit:
                self._tx.__exit__(None, None, None)
            else:
                self._tx.__exit__(psycopg.Rollback, psycopg.Rollback(), None)
        except psycopg.Error as exc:
            raise database_error(exc) from exc
        finally:
            if self._pool is not None:
                self._pool.putconn(conn)

    def commit(self) -> None:
        self._end(True)

    def rollback(self) -> None:
        self._end(False)

    def __enter__(self) -> SyncTransaction:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._conn is not None:
            self._end(exc_type is None)
        return False


class Transaction(_Base):
    """A transaction of the :class:`~awa.client.AsyncClient` (awa-pg's ``Transaction``).

    ``tx = await client.transaction()`` opens it; ``async with await
    client.transaction() as tx`` and ``async with client.transaction() as tx``
    both open it and commit (or, on an exception, roll back) at the end.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn = None
        self._tx: Any = None
        self._pool: Any = None
        self._started = False

    async def _start(self) -> Transaction:
        if self._started:
            return self
        self._started = True
        executor = self._client.executor
        self._pool = executor.pool
        if self._pool is not None:
            await executor.open()
            conn = await self._pool.getconn()
        else:
            conn = executor.conn
        try:
            self._tx = conn.transaction()
            await self._tx.__aenter__()
        except BaseException:
            if self._pool is not None:
                await self._pool.putconn(conn)
            raise
        self._conn = conn
        return self

    def __await__(self) -> Any:
        return self._start().__await__()

    # -- the application's SQL --------------------------------------------
    async def _run(self, query: str, args: tuple[Any, ...]) -> Any:
        cur = psycopg.AsyncRawCursor(self.connection, row_factory=dict_row)
        try:
            await cur.execute(query, _params(args))
        except psycopg.Error as exc:
            await cur.close()
            raise database_error(exc) from exc
        return cur

    async def execute(self, query: str, *args: Any) -> int:
        async with await self._run(query, args) as cur:
            return max(cur.rowcount, 0)

    async def fetch_one(self, query: str, *args: Any) -> dict[str, Any]:
        async with await self._run(query, args) as cur:
            row = await cur.fetchone()
        if row is None:
            raise DatabaseError(NO_ROW)
        return row

    async def fetch_optional(self, query: str, *args: Any) -> dict[str, Any] | None:
        async with await self._run(query, args) as cur:
            return await cur.fetchone()

    async def fetch_all(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async with await self._run(query, args) as cur:
            return await cur.fetchall()

    # -- enqueue ---------------------------------------------------------
    async def insert(self, args: Any, **opts: Any) -> Any:
        return await self._client.insert(args, **self._insert_opts(opts))

    async def insert_many(self, jobs: Any, **opts: Any) -> Any:
        return await self._client.insert_many_copy(jobs, **self._insert_opts(opts))

    # -- ending ----------------------------------------------------------
    async def _end(self, commit: bool) -> None:
        conn = self._conn
        if conn is None:
            raise AwaError(FINISHED)
        self._conn = None
        try:
            if commit:
                await self._tx.__aexit__(None, None, None)
            else:
                await self._tx.__aexit__(psycopg.Rollback, psycopg.Rollback(), None)
        except psycopg.Error as exc:
            raise database_error(exc) from exc
        finally:
            if self._pool is not None:
                await self._pool.putconn(conn)

    async def commit(self) -> None:
        await self._end(True)

    async def rollback(self) -> None:
        await self._end(False)

    async def __aenter__(self) -> Transaction:
        return await self._start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._conn is not None:
            await self._end(exc_type is None)
        return False
