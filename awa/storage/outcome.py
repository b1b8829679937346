"""Read back the outcome of a COMMIT whose answer was lost (ADR 0038).

When the connection breaks after COMMIT was sent, the transaction may have
committed: PostgreSQL writes the commit record, then answers. The executors
know the transaction's id (an operation's :class:`~awa.storage.ops.TxId`
step) and ask a new connection for ``pg_xact_status`` until it says
``committed`` or ``aborted``, the server is back, or the time is up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import psycopg

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

    def verdict(self, writes: str | None) -> str:
        """After a lost connection: ``failed`` (nothing can have been written,
        or the operation writes nothing we account for), ``read`` (the
        COMMIT's outcome can be read back by the transaction id) or
        ``unknown``."""
        if not self.sent:
            return "failed"  # no connection: nothing was sent
        if self.finished and self.xid is not None:
            return "read"
        if self.in_tx and not self.finished:
            return "failed"  # a statement failed inside the transaction: COMMIT was never sent
        return "failed" if writes is None else "unknown"


def _connect_kwargs(kwargs: dict[str, Any], left: float) -> dict[str, Any]:
    out = {k: v for k, v in kwargs.items() if k not in ("prepare_threshold", "row_factory", "cursor_factory")}
    out["autocommit"] = True
    out["connect_timeout"] = max(1, min(5, int(left)))
    return out


def read_status(conninfo: str, kwargs: dict[str, Any], xid: str, seconds: float = CHECK_SECONDS) -> str | None:
    """``committed`` or ``aborted`` once a new connection can tell; None when
    the time ran out first."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            with psycopg.connect(conninfo, **_connect_kwargs(kwargs, left)) as conn:
                status = conn.execute(_STATUS_SQL, (xid,)).fetchone()[0]  # type: ignore[index]
            if status in FINAL:
                return _logged(xid, status)
        except psycopg.OperationalError:
            pass
        if time.monotonic() + RETRY_SECONDS >= deadline:
            return _logged(xid, None)
        time.sleep(RETRY_SECONDS)


async def read_status_async(conninfo: str, kwargs: dict[str, Any], xid: str, seconds: float = CHECK_SECONDS) -> str | None:
    """:func:`read_status` for asyncio."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, **_connect_kwargs(kwargs, left)) as conn:
                cur = await conn.execute(_STATUS_SQL, (xid,))
                status = (await cur.fetchone())[0]  # type: ignore[index]
            if status in FINAL:
                return _logged(xid, status)
        except psycopg.OperationalError:
            pass
        if time.monotonic() + RETRY_SECONDS >= deadline:
            return _logged(xid, None)
        await asyncio.sleep(RETRY_SECONDS)


def _logged(xid: str, status: str | None) -> str | None:
    log.warning("the connection was lost at COMMIT of transaction %s; read back: %s", xid, status or "unknown")
    return status
