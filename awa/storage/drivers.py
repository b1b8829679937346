"""Run operation generators on psycopg connections: a sync and an async driver.

:class:`SyncExecutor` and :class:`AsyncExecutor` own where an operation runs:
a connection pool (one connection per call, a transaction when the operation
needs one) or a single connection. The clients and the worker only hand them
operations from :class:`~awa.storage.core.StorageCore`.
"""

from __future__ import annotations

import asyncio
import select
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg_pool import AsyncConnectionPool, ConnectionPool

try:  # the pool's reconnect schedule; absent in a psycopg_pool we do not know
    from psycopg_pool.base import AttemptWithBackoff
except ImportError:  # pragma: no cover
    AttemptWithBackoff = None  # type: ignore[assignment,misc]

from awa.db.url import check_url
from awa.errors import SchemaNotMigrated, ValidationError
from awa.storage.codec import use_fast_json
from awa.storage.ops import BadRow, Copy, Op, Result, TxId
from awa.storage.outcome import CommitWatch, read_status, read_status_async, settle

COPY_BLOCK = 1 << 18  # characters per write: the server parses while we send

_ROW_RESULTS = frozenset(
    getattr(pq.ExecStatus, name) for name in ("TUPLES_OK", "SINGLE_TUPLE", "TUPLES_CHUNK") if hasattr(pq.ExecStatus, name)
)


def result_names(cur: Any) -> list[str] | None:
    """The column names of a cursor's current result, or None when it has no
    rows to fetch (a command without RETURNING).

    Read from the result itself: ``cursor.description`` builds a Column object
    for every column on every access, which cost a claim statement (27
    columns) a quarter of a millisecond of the worker's time.
    """
    res = cur.pgresult
    if res is None or not (res.nfields or res.status in _ROW_RESULTS):  # as psycopg decides it
        return None
    # Our statements name their columns in ASCII, which every client encoding
    # PostgreSQL offers spells alike: no need to look up the connection's.
    fname = res.fname
    return [fname(i).decode() for i in range(res.nfields)]


def _raw_int(res: Any, row: int, col: int | None) -> int | None:
    if col is None:
        return None
    value = res.get_value(row, col)
    if value is None:
        return None
    if res.fformat(col) == 1:  # binary
        return int.from_bytes(bytes(value), "big", signed=True)
    return int(bytes(value))


def decode_each(cur: Any, names: list[str]) -> tuple[list[tuple[Any, ...]], list[BadRow]]:
    """Decode a result column by column after ``fetchall`` failed: the rows
    that decode, and a :class:`BadRow` for each one that does not."""
    res = cur.pgresult
    tx = Transformer.from_context(cur)
    loaders = [tx.get_loader(res.ftype(c), res.fformat(c)) for c in range(res.nfields)]
    at_id = names.index("id") if "id" in names else None
    at_lease = names.index("run_lease") if "run_lease" in names else None
    rows: list[tuple[Any, ...]] = []
    bad: list[BadRow] = []
    for r in range(res.ntuples):
        values: list[Any] = []
        for c, loader in enumerate(loaders):
            raw = res.get_value(r, c)
            try:
                values.append(None if raw is None else loader.load(raw))
            except Exception as exc:  # noqa: BLE001 - any decoding failure isolates the row
                text = str(exc) or type(exc).__name__
                bad.append(BadRow(_raw_int(res, r, at_id), _raw_int(res, r, at_lease), names[c],
                                  f"{type(exc).__name__}: {text[:500]}"))
                break
        else:
            rows.append(tuple(values))
    return rows, bad


def _fetch_isolated(cur: Any, names: list[str], rows: Any) -> Result:
    if isinstance(rows, BaseException):
        good, bad = decode_each(cur, names)
        return Result(names, good, cur.rowcount, bad)
    return Result(names, rows, cur.rowcount)


# -- the drivers ---------------------------------------------------------------


class KeptCursor:
    """A connection of a pool this package made: one statement cursor kept.

    ``Connection.execute`` builds a cursor (its adapters and transformer) for
    every statement, a tenth of a single insert's client time. A checked-out
    connection serves one caller at a time, so the executors run every
    statement of an operation on this one cursor instead."""

    _statement_cursor: Any = None

    def statement_cursor(self) -> Any:
        cur = self._statement_cursor
        if cur is None or cur.closed:
            cur = self._statement_cursor = self.cursor()  # type: ignore[attr-defined]
        return cur


class PooledConnection(KeptCursor, psycopg.Connection):  # type: ignore[type-arg]
    """The sync pools' connection class."""


class AsyncPooledConnection(KeptCursor, psycopg.AsyncConnection):  # type: ignore[type-arg]
    """The async pools' connection class."""


def run_sync(
    conn: psycopg.Connection, op: Op, cursor: psycopg.Cursor | None = None,  # type: ignore[type-arg]
    watch: CommitWatch | None = None,
) -> Any:
    """Drive one operation generator on ``conn`` (no transaction handling
    here); ``cursor``: one of ``conn``'s to run its statements on (else a new
    cursor per statement); ``watch``: where the operation's transaction id
    and its end are noted (ADR 0038)."""
    try:
        step = next(op)
        while True:
            if type(step) is TxId:
                if watch is not None:
                    watch.xid = step.xid
                result: Result | None = None
            elif type(step) is Copy:
                with conn.cursor() as cur, cur.copy(step.sql) as copy:
                    data = step.data
                    for i in range(0, len(data), COPY_BLOCK):
                        copy.write(data[i : i + COPY_BLOCK])
                result = None
            else:
                cur = conn.execute(step.sql, step.params) if cursor is None else cursor.execute(step.sql, step.params)
                names = result_names(cur)
                if names is not None and step.isolate:
                    try:
                        rows: Any = cur.fetchall()
                    except Exception as exc:  # noqa: BLE001 - a row that does not decode
                        rows = exc
                    result = _fetch_isolated(cur, names, rows)
                else:
                    result = Result(names or [], cur.fetchall() if names is not None else [], cur.rowcount)
            step = op.send(result)
    except StopIteration as done:
        if watch is not None:
            watch.finished = True
        return done.value
    finally:
        op.close()


async def run_async(
    conn: psycopg.AsyncConnection, op: Op, cursor: psycopg.AsyncCursor | None = None,  # type: ignore[type-arg]
    watch: CommitWatch | None = None,
) -> Any:
    """:func:`run_sync` on an async connection."""
    try:
        step = next(op)
        while True:
            if type(step) is TxId:
                if watch is not None:
                    watch.xid = step.xid
                result: Result | None = None
            elif type(step) is Copy:
                async with conn.cursor() as cur, cur.copy(step.sql) as copy:
                    data = step.data
                    for i in range(0, len(data), COPY_BLOCK):
                        await copy.write(data[i : i + COPY_BLOCK])
                result = None
            else:
                cur = await (conn.execute(step.sql, step.params) if cursor is None
                             else cursor.execute(step.sql, step.params))
                names = result_names(cur)
                if names is not None and step.isolate:
                    try:
                        fetched: Any = await cur.fetchall()
                    except Exception as exc:  # noqa: BLE001 - a row that does not decode
                        fetched = exc
                    result = _fetch_isolated(cur, names, fetched)
                else:
                    rows = await cur.fetchall() if names is not None else []
                    result = Result(names or [], rows, cur.rowcount)
            step = op.send(result)
    except StopIteration as done:
        if watch is not None:
            watch.finished = True
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


async def run_in_async(conn: psycopg.AsyncConnection, op: Op) -> Any:
    """:func:`run_in` on an async connection."""
    if conn.autocommit:
        async with conn.transaction():
            return await run_async(conn, op)
    return await run_async(conn, op)


# -- executors -----------------------------------------------------------------


def _configure_sync(conn: psycopg.Connection) -> None:
    use_fast_json(conn)


async def _configure_async(conn: psycopg.AsyncConnection) -> None:
    use_fast_json(conn)


# -- pools that recover quickly after an outage ----------------------------------
#
# psycopg_pool retries a failed connection attempt after 1 s, 2 s, 4 s, ...
# (up to reconnect_timeout), and hands out pooled connections unchecked: after
# a server restart, callers got AdminShutdown from a dead pooled connection,
# and the first success came many seconds after the server was back. Here a
# reconnect is retried every RECONNECT_MAX_DELAY_S at most, and a connection is
# checked on checkout when its socket has something to read (a terminated or
# restarted server closes it, with or without a FATAL message): no round trip
# for a healthy connection. One failed check purges every idle connection.

RECONNECT_FIRST_DELAY_S = 0.05
RECONNECT_MAX_DELAY_S = 0.5
POOL_TIMEOUT_S = 30.0


if AttemptWithBackoff is not None:

    class QuickReconnect(AttemptWithBackoff):  # type: ignore[misc,valid-type]
        """The pool's reconnect backoff, capped at RECONNECT_MAX_DELAY_S."""

        INITIAL_DELAY = RECONNECT_FIRST_DELAY_S

        def update_delay(self, now: float) -> None:
            super().update_delay(now)
            self.delay = min(self.delay, RECONNECT_MAX_DELAY_S)


def _new_attempt(pool: Any) -> Any:
    return None if AttemptWithBackoff is None else QuickReconnect(timeout=pool.reconnect_timeout)


def looks_dead(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """Whether an idle connection must be checked before use: closed, broken,
    or its socket is readable (an idle healthy connection has nothing to read)."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class RecoveringPool(ConnectionPool):
    """A ConnectionPool with a capped reconnect backoff and a cheap checkout check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("check", self._check_idle)
        kwargs.setdefault("timeout", POOL_TIMEOUT_S)
        super().__init__(*args, **kwargs)

    def _check_idle(self, conn: psycopg.Connection) -> None:
        if not looks_dead(conn):
            return
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            self.check()  # the others died with it: drop them now, not one by one
            raise

    def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        super()._add_connection(attempt or _new_attempt(self), growing)


class AsyncRecoveringPool(AsyncConnectionPool):
    """:class:`RecoveringPool` for asyncio."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("check", self._check_idle)
        kwargs.setdefault("timeout", POOL_TIMEOUT_S)
        super().__init__(*args, **kwargs)
        self._purge: asyncio.Task[Any] | None = None

    async def _check_idle(self, conn: psycopg.AsyncConnection) -> None:
        if not looks_dead(conn):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if self._purge is None or self._purge.done():
                self._purge = asyncio.get_running_loop().create_task(self.check())
            raise

    async def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        await super()._add_connection(attempt or _new_attempt(self), growing)


def _pool_options(name: str, min_size: int, max_size: int, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    # autocommit by default: one round trip for single-statement calls
    kwargs = {"autocommit": True} if kwargs is None else kwargs
    return {"name": name, "min_size": min_size, "max_size": max_size, "kwargs": kwargs}


# What a query of this package gets from a schema that lacks its objects: a
# schema dropped or never migrated, or one built by an earlier baseline.
_MISSING_OBJECT = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.InvalidSchemaName,
    psycopg.errors.UndefinedObject,
)


def missing_schema_error(exc: BaseException, schema: str | None) -> SchemaNotMigrated | None:
    """:class:`SchemaNotMigrated` for a psycopg error about a missing object
    of ``schema`` (a relation, function, type or the schema itself), else None."""
    if schema is None or not isinstance(exc, _MISSING_OBJECT):
        return None
    text = (str(exc).splitlines() or [""])[0]
    if f'"{schema}"' not in text and f"{schema}." not in text:
        return None
    return SchemaNotMigrated(
        f"schema not migrated: {text} (schema {schema!r}); run 'awa migrate' or client.migrate() first "
        "(a schema built by an earlier build of this package's baseline: drop it and migrate again)"
    )


def _single_connection_error() -> ValidationError:
    return ValidationError(
        "the worker runtime needs a client built on a database URL or a connection pool, "
        "not on a single connection"
    )


class SyncExecutor:
    """Runs operations on a :class:`ConnectionPool` (its own, from a URL) or one connection.

    ``kwargs``: connection arguments of a pool built from a URL (default
    ``autocommit=True``)."""

    def __init__(
        self,
        target: str | ConnectionPool | psycopg.Connection,
        *,
        name: str,
        min_size: int,
        max_size: int,
        kwargs: dict[str, Any] | None = None,
        schema: str | None = None,
    ) -> None:
        self.schema = schema  # errors about its missing objects become SchemaNotMigrated
        self.pool: ConnectionPool | None = None
        self.conn: psycopg.Connection | None = None
        self.owns_pool = False
        if isinstance(target, str):
            check_url(target)  # a clear error now, not the pool's retries echoing the URL
            self.pool = RecoveringPool(
                target, open=True, configure=_configure_sync, connection_class=PooledConnection,
                **_pool_options(name, min_size, max_size, kwargs),
            )
            self.owns_pool = True
        elif isinstance(target, ConnectionPool):
            self.pool = target
        elif isinstance(target, psycopg.Connection):
            self.conn = target
        else:
            raise ValidationError("Client needs a database URL, a psycopg_pool.ConnectionPool or a psycopg.Connection")

    def run(self, op: Op, conn: Any = None, tx: bool = True, writes: str | None = None) -> Any:
        """Run ``op``. ``conn``: the caller's connection and transaction.
        ``tx=False``: the operation is one statement (atomic on its own), so an
        autocommit connection runs it without BEGIN/COMMIT. ``writes``: what
        the operation writes ("the insert"): a connection lost while it
        was in flight, on a connection of this executor, raises
        :class:`~awa.errors.CommitUnknown` (ADR 0038). A COMMIT of an
        operation that named its transaction (:class:`TxId`) whose answer is
        lost is read back."""
        if conn is not None:
            if not isinstance(conn, psycopg.Connection):
                op.close()
                raise ValidationError("conn must be a psycopg.Connection for the sync Client")
        watch = CommitWatch()
        value: Any = None
        try:
            if conn is not None:
                return run_in(conn, op) if tx else run_sync(conn, op)  # one statement: atomic alone
            if self.pool is not None:
                with self.pool.connection() as pooled:  # commits on success, rolls back on error
                    watch.start(tx or not pooled.autocommit)
                    cur = pooled.statement_cursor() if isinstance(pooled, PooledConnection) else None
                    if tx and pooled.autocommit:
                        with pooled.transaction():
                            value = run_sync(pooled, op, cur, watch)
                        return value
                    value = run_sync(pooled, op, cur, watch)
                return value
            assert self.conn is not None
            watch.start(tx or not self.conn.autocommit)
            if not tx and self.conn.autocommit:
                return run_sync(self.conn, op, None, watch)  # one statement: atomic alone, one round trip
            with self.conn.transaction():
                value = run_sync(self.conn, op, None, watch)
            return value
        except psycopg.OperationalError as exc:
            verdict = watch.verdict(writes, exc, self.pool is not None)  # the caller's conn: never started
            if verdict == "failed":
                raise
            status = read_status(*self.connect_args(), watch.xid) if verdict == "read" else None  # type: ignore[arg-type]
            return settle(status, value, exc, writes, watch.xid)
        except _MISSING_OBJECT as exc:
            missing = missing_schema_error(exc, self.schema)
            if missing is None:
                raise
            raise missing from exc

    def connection(self) -> Any:
        """A pooled connection context manager."""
        if self.pool is None:
            raise ValidationError("this client was built on a single connection; use it directly")
        return self.pool.connection()

    def connect_args(self) -> tuple[str, dict[str, Any]]:
        """The pool's conninfo and connection kwargs (to open more connections alike)."""
        if self.pool is None:
            raise _single_connection_error()
        return self.pool.conninfo, dict(self.pool.kwargs or {})

    def close(self) -> None:
        if self.owns_pool and self.pool is not None:
            self.pool.close()


class AsyncExecutor:
    """Runs operations on an :class:`AsyncConnectionPool` (its own, opened on
    first use) or one async connection."""

    def __init__(
        self,
        target: str | AsyncConnectionPool | psycopg.AsyncConnection,
        *,
        name: str,
        min_size: int,
        max_size: int,
        kwargs: dict[str, Any] | None = None,
        schema: str | None = None,
    ) -> None:
        self.schema = schema  # errors about its missing objects become SchemaNotMigrated
        self.pool: AsyncConnectionPool | None = None
        self.conn: psycopg.AsyncConnection | None = None
        self.owns_pool = False
        self.opened = False
        if isinstance(target, str):
            check_url(target)
            self.pool = AsyncRecoveringPool(
                target, open=False, configure=_configure_async, connection_class=AsyncPooledConnection,
                **_pool_options(name, min_size, max_size, kwargs),
            )
            self.owns_pool = True
        elif isinstance(target, AsyncConnectionPool):
            self.pool = target
            self.opened = True
        elif isinstance(target, psycopg.AsyncConnection):
            self.conn = target
        else:
            raise ValidationError(
                "AsyncClient needs a database URL, a psycopg_pool.AsyncConnectionPool or a psycopg.AsyncConnection"
            )

    async def open(self) -> None:
        """Open a pool this executor created (idempotent)."""
        if self.pool is not None and not self.opened:
            await self.pool.open()
            self.opened = True

    async def run(self, op: Op, conn: Any = None, tx: bool = True, writes: str | None = None) -> Any:
        """:meth:`SyncExecutor.run` for asyncio."""
        if conn is not None:
            if not isinstance(conn, psycopg.AsyncConnection):
                op.close()
                raise ValidationError("conn must be a psycopg.AsyncConnection for the AsyncClient")
        watch = CommitWatch()
        value: Any = None
        try:
            if conn is not None:
                return await (run_in_async(conn, op) if tx else run_async(conn, op))  # one statement: atomic alone
            if self.pool is not None:
                await self.open()
                async with self.pool.connection() as pooled:
                    watch.start(tx or not pooled.autocommit)
                    cur = pooled.statement_cursor() if isinstance(pooled, AsyncPooledConnection) else None
                    if tx and pooled.autocommit:
                        async with pooled.transaction():
                            value = await run_async(pooled, op, cur, watch)
                        return value
                    value = await run_async(pooled, op, cur, watch)
                return value
            assert self.conn is not None
            watch.start(tx or not self.conn.autocommit)
            if not tx and self.conn.autocommit:
                return await run_async(self.conn, op, None, watch)  # one statement: atomic alone, one round trip
            async with self.conn.transaction():
                value = await run_async(self.conn, op, None, watch)
            return value
        except psycopg.OperationalError as exc:
            verdict = watch.verdict(writes, exc, self.pool is not None)  # the caller's conn: never started
            if verdict == "failed":
                raise
            status = await read_status_async(*self.connect_args(), watch.xid) if verdict == "read" else None  # type: ignore[arg-type]
            return settle(status, value, exc, writes, watch.xid)
        except _MISSING_OBJECT as exc:
            missing = missing_schema_error(exc, self.schema)
            if missing is None:
                raise
            raise missing from exc

    def connection(self) -> Any:
        """A pooled connection async context manager (opens the pool first)."""
        if self.pool is None:
            raise ValidationError("this client was built on a single connection; use it directly")
        return _OpenThenConnect(self)

    def connect_args(self) -> tuple[str, dict[str, Any]]:
        if self.pool is None:
            raise _single_connection_error()
        return self.pool.conninfo, dict(self.pool.kwargs or {})

    async def connect(self) -> psycopg.AsyncConnection:
        """A dedicated autocommit connection outside the pool (LISTEN, leader lock)."""
        conninfo, kwargs = self.connect_args()
        kwargs["autocommit"] = True
        return await psycopg.AsyncConnection.connect(conninfo, **kwargs)

    async def ensure_size(self, needed: int, what: str) -> None:
        """Grow an own pool to ``needed`` connections; refuse a caller's smaller pool."""
        pool = self.pool
        if pool is None:
            raise _single_connection_error()
        if pool.max_size >= needed:
            return
        if not self.owns_pool:
            raise ValidationError(
                f"connection pool max_size={pool.max_size} is too small for this worker: it needs {needed} "
                f"({what}); pass a larger pool or configure fewer claimers"
            )
        await self.open()  # an async pool can only resize once open
        await pool.resize(min_size=min(pool.min_size, needed), max_size=needed)

    async def close(self) -> None:
        if self.owns_pool and self.pool is not None and self.opened:
            await self.pool.close()


class _OpenThenConnect:
    def __init__(self, executor: AsyncExecutor) -> None:
        self._executor = executor
        self._cm: Any = None

    async def __aenter__(self) -> psycopg.AsyncConnection:
        await self._executor.open()
        assert self._executor.pool is not None
        self._cm = self._executor.pool.connection()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)
