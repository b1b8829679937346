"""Connection errors logged once per outage, with a count, not once per retry.

During an outage every loop of the worker (claimers, the completion flusher,
heartbeats, LISTEN) retries every fraction of a second; logging each failure
with its traceback printed hundreds of lines. :class:`OutageLog` logs the
first connection error of an outage as one line, counts the rest, and logs
``database reachable again after N s (M connection errors)`` when a call
succeeds again. Errors that are not about the connection are logged each
time, with their traceback.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg_pool import PoolTimeout

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, PoolTimeout, OSError)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or the connection died."""
    if isinstance(exc, psycopg.errors.QueryCanceled):  # statement_timeout: a real error
        return False
    return isinstance(exc, _CONNECTION_ERRORS)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class OutageLog:
    """Shared by the loops of one runtime (one event loop thread)."""

    def __init__(self, logger: logging.Logger, clock=time.monotonic) -> None:
        self.log = logger
        self.clock = clock
        self.since: float | None = None
        self.errors = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, what: str, exc: BaseException) -> None:
        """Log a failure of ``what`` (quietly when it is a connection error)."""
        if not is_connection_error(exc):
            self.log.error("%s failed", what, exc_info=exc)
            return
        self.errors += 1
        if self.since is None:
            self.since = self.clock()
            self.outages += 1
            self.log.warning("database unreachable (%s: %s); retrying, further connection errors are counted, "
                             "not logged", what, _one_line(exc))

    def ok(self) -> None:
        """A call succeeded: end the outage, if any, with one line."""
        if self.since is None:
            return
        seconds = self.clock() - self.since
        self.log.warning("database reachable again: recovered after %.1f s, %d connection error(s)",
                         seconds, self.errors)
        self.since = None
        self.errors = 0


class OutageFilter(logging.Filter):
    """On the ``awa.worker`` logger: a record whose exception is a connection
    error (another loop's ``log.warning(..., exc_info=True)``) goes to the
    :class:`OutageLog` instead of printing a traceback per retry."""

    def __init__(self, outage: OutageLog) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_connection_error(exc):
            return True
        self.outage.failed(record.getMessage(), exc)
        return False


class PoolNoiseFilter(logging.Filter):
    """Drops psycopg_pool's per-attempt warnings (``error connecting in ...``,
    ``discarding broken connection``); the runtime's :class:`OutageLog`
    reports the outage once instead. Install on the ``psycopg.pool`` logger."""

    NOISE = ("error connecting in", "discarding broken connection", "discarding closed connection",
             "reconnection attempt in pool")

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.WARNING and str(record.msg).startswith(self.NOISE):
            self.dropped += 1
            return False
        return True
