"""Exception hierarchy shared by every layer of the package.

``ValidationError`` is both an ``AwaError`` and a ``ValueError`` so callers can
catch either the package's base error or the builtin they already expect for
bad input.
"""

from __future__ import annotations

import psycopg


class AwaError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(AwaError, ValueError):
    """Bad input. Raised before anything is written to the database."""


class PartitionCountMismatch(ValidationError):
    """A producer or worker uses another partition count than the one
    registered for the logical queue (``awa queue partitions``)."""

    def __init__(self, logical_queue: str, registered: int, used: int, who: str = "this producer") -> None:
        super().__init__(
            f"logical queue {logical_queue!r} is registered with {registered} partitions, but {who} uses {used}; "
            f"route with PartitionedQueue({logical_queue!r}, {registered}), or drain the queue and record the new "
            f"count with `awa queue partitions {logical_queue} {used}`"
        )
        self.logical_queue = logical_queue
        self.registered = registered
        self.used = used


class DatabaseUnavailable(AwaError):
    """The database could not be reached; the message never contains a password."""


class MigrationError(AwaError):
    """A schema migration could not be applied."""


class UniqueConflict(AwaError):
    """A job with the same unique key is already in one of its unique states
    (awa-pg's ``UniqueConflict``); nothing was written. ``constraint`` names
    the index that refused it."""

    def __init__(self, constraint: str | None = "idx_awa_jobs_unique") -> None:
        detail = f" ({constraint})" if constraint else ""
        super().__init__(f"unique conflict{detail}")
        self.constraint = constraint


__all__ = ["AwaError", "ValidationError", "PartitionCountMismatch", "DatabaseUnavailable", "MigrationError"]


# -- awa-pg's exception names (docs/awa-pg-compatibility.md) --------------------


class SchemaNotMigrated(AwaError):
    """The schema is missing or older than this package expects: run ``awa migrate``."""


class UnknownJobKind(AwaError):
    """No handler is registered for a job's kind."""


class SerializationError(ValidationError):
    """Job args or metadata could not be encoded as JSON (bad input, so also a
    ``ValidationError``; nothing was written)."""


class DatabaseError(AwaError):
    """A statement failed in the database (a transaction helper's SQL, say);
    the psycopg error is the ``__cause__``."""


__all__ += ["SchemaNotMigrated", "UnknownJobKind", "SerializationError", "DatabaseError"]
__all__ += ["UniqueConflict"]


class CommitUnknown(AwaError, psycopg.OperationalError):
    """The connection was lost while a write of this client was committing,
    and its outcome could not be read back (ADR 0038): the jobs may or may not
    be in the database. ``xact_id`` is the transaction's id
    (``pg_current_xact_id()``; ``SELECT pg_xact_status(xact_id::xid8)`` tells
    later) or None for a single statement, whose id the client never saw.
    Also a ``psycopg.OperationalError``, as the lost connection was before."""

    def __init__(self, what: str, xact_id: str | None = None) -> None:
        if xact_id is None:
            text = f"the connection was lost during {what}; whether it was committed is unknown"
        else:
            text = (f"the connection was lost while {what} was committing and its outcome could not be read back; "
                    f"check with pg_xact_status('{xact_id}'::xid8)")
        super().__init__(text)
        self.xact_id = xact_id


__all__ += ["CommitUnknown"]
