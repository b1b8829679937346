"""Read back the outcome of a COMMIT whose answer was lost (ADR 0038).

When the connection breaks after COMMIT was sent, the transaction may have
committed: PostgreSQL writes the commit record, then answers. The executors
know the transaction's id (an operation's :class:`~awa.storage.ops.TxId`
step) and ask a new connection for ``pg_xact_status`` until it says
``committed`` or ``aborted``, the server is back, or the time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from awa.errors import CommitUnknown

log = logging.getLogger("awa.storage")

CHECK_SECONDS = 30.0  # how long a lost COMMIT is read back before CommitUnknown
RETRY_SECONDS = 0.2  # between attempts while the server is away
_STATUS_SQL = "SELECT pg_xact_status(%s::xid8)"
FINAL = ("committed", "aborted")


class CommitWatch:
    """What an executor saw of one operation: whether it got a connection,
    ran in a transaction, named its transaction id, and finished (so that
    only its COMMIT can have failed)."""

    __slots__ = ("sent", "in_tx", "xid", "finished")

    def __init__(self) -> None:
        self.sent = False
        self.in_tx = False
        self.xid: str | None = None
        self.finished = False

    def start(self, in_tx: bool) -> None:
        self.sent, self.in_tx = True, in_tx

    def verdict(self, writes: str | None, exc: psycopg.OperationalError, can_connect: bool) -> str:
        """After ``exc``: ``failed`` (nothing can have been written, or the
        operation writes nothing we account for), ``read`` (the COMMIT's
        outcome can be read back by the transaction id on a new connection,
        which the executor ``can_connect`` to) or ``unknown``."""
        if answered(exc):
            return "failed"  # an ERROR on a live connection: the statement or the COMMIT failed
        if not self.sent:
            return "failed"  # no connection: nothing was sent
        if self.finished and self.xid is not None:
            return "read" if can_connect else "unknown"
        if self.in_tx and not self.finished:
            return "failed"  # a statement failed inside the transaction: COMMIT was never sent
        return "failed" if writes is None else "unknown"


def answered(exc: psycopg.Error) -> bool:
    """The server answered with an ERROR (a lock timeout, a cancel) and the
    connection lives on: the transaction rolled back. A lost connection has
    no SQLSTATE; a FATAL one (a terminated backend) may follow a commit."""
    severity = exc.diag.severity_nonlocalized or exc.diag.severity
    return exc.sqlstate is not None and severity not in ("FATAL", "PANIC")


def _connect_kwargs(kwargs: dict[str, Any], left: float) -> dict[str, Any]:
    out = {k: v for k, v in kwargs.items() if k not in ("prepare_threshold", "row_factory", "cursor_factory")}
    out["autocommit"] = True
    out["connect_timeout"] = max(1, min(5, int(left)))
    return out


def _attempts(kwargs: dict[str, Any], seconds: float) -> Iterator[dict[str, Any]]:
    """Connection arguments of each attempt until the time is up; from the
    second attempt on, the caller waits RETRY_SECONDS first."""
    deadline = time.monotonic() + seconds
    while True:
        yield _connect_kwargs(kwargs, deadline - time.monotonic())
        if time.monotonic() + RETRY_SECONDS >= deadline:
            return


def read_status(conninfo: str, kwargs: dict[str, Any], xid: str, seconds: float = CHECK_SECONDS) -> str | None:
    """``committed`` or ``aborted`` once a new connection can tell; None when
    the time ran out first."""
    for n, attempt in enumerate(_attempts(kwargs, seconds)):
        time.sleep(RETRY_SECONDS if n else 0)
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(conninfo, **attempt) as conn:
            if (status := conn.execute(_STATUS_SQL, (xid,)).fetchone()[0]) in FINAL:  # type: ignore[index]
                return _logged(xid, status)
    return _logged(xid, None)


async def read_status_async(conninfo: str, kwargs: dict[str, Any], xid: str, seconds: float = CHECK_SECONDS) -> str | None:
    """:func:`read_status` for asyncio."""
    for n, attempt in enumerate(_attempts(kwargs, seconds)):
        await asyncio.sleep(RETRY_SECONDS if n else 0)
        with contextlib.suppress(psycopg.OperationalError):
            async with await psycopg.AsyncConnection.connect(conninfo, **attempt) as conn:
                if (status := (await (await conn.execute(_STATUS_SQL, (xid,))).fetchone())[0]) in FINAL:  # type: ignore[index]
                    return _logged(xid, status)
    return _logged(xid, None)


def settle(status: str | None, value: Any, exc: BaseException, writes: str | None, xid: str | None) -> Any:
    """What a call whose connection was lost returns or raises, once the
    outcome was read back (``status``) or could not be (None)."""
    if status == "committed":
        return value
    if status == "aborted":
        raise exc
    raise CommitUnknown(writes or "the write", xid) from exc


def _logged(xid: str, status: str | None) -> str | None:
    log.warning("the connection was lost at COMMIT of transaction %s; read back: %s", xid, status or "unknown")
    return status
