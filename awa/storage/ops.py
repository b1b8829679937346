"""What every storage operation is made of (no I/O).

An operation is a generator that yields :class:`Query` or :class:`Copy` steps
and receives their :class:`Result`; the drivers in :mod:`awa.storage.drivers`
run it synchronously or on asyncio. :class:`OpsBase` holds what the
operations of one schema share.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from awa.errors import ValidationError
from awa.storage.copy_rows import array_literal
from awa.storage.metrics import EnqueueMetrics
from awa.storage.models import Job
from awa.storage.queries import notify_channel, query, render
from awa.storage.validate import check_id


@dataclass(slots=True)
class Query:
    sql: str
    params: dict[str, Any]
    # Rows that fail to decode are set aside in Result.bad instead of failing
    # the whole result (claims: one poisoned row must not strand the others).
    isolate: bool = False


@dataclass(slots=True)
class Copy:
    sql: str
    data: str


@dataclass(slots=True)
class TxId:
    """The operation's transaction id (``pg_current_xact_id()`` as text): when
    the connection is lost at COMMIT, the executor reads the outcome back with
    it (ADR 0038). The step has no result; on a caller's connection it is
    ignored."""

    xid: str


@dataclass(slots=True)
class BadRow:
    """A result row the client could not decode: its ``id`` and ``run_lease``
    (read undecoded), the first column that failed and why."""

    id: int | None
    run_lease: int | None
    column: str
    error: str


@dataclass(slots=True)
class Result:
    names: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int
    bad: list[BadRow] = field(default_factory=list)  # only for Query.isolate


Op = Generator[Query | Copy | TxId, Result | None, Any]


def jobs_of(res: Result) -> list[Job]:
    return Job.from_rows(res.names, res.rows)


def error_text(error: Any) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    # Stored in jsonb: NUL and lone surrogates cannot be; a handler's message
    # must never make the outcome itself fail, so they are replaced.
    return _UNSTORABLE.sub("\ufffd", text)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def id_lease_pairs(items: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    leases: list[int] = []
    for job_id, lease in items:
        ids.append(check_id(job_id))
        leases.append(check_id(lease, "run_lease"))
    return ids, leases


# Array parameters travel as array literals (text, cast by the query to its
# ``::type[]``): psycopg dumps a Python list element by element in Python, which
# cost a 256-job complete_many 0.4 ms of the worker's time against 0.03 ms for
# the literal.
def int_array(values: Iterable[int]) -> str:
    """``{1,2,3}`` for ints (callers pass ints already checked or converted)."""
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Iterable[str]) -> str:
    """``{"a","b"}``: every element quoted, backslashes and quotes escaped."""
    return array_literal(list(values))


class OpsBase:
    """State shared by the operations of one schema: clock, jitter,
    enqueue-shard cache, rotor and enqueue metrics."""

    def __init__(
        self,
        schema: str = "awa",
        clock: Callable[[], dt.datetime] | None = None,
        jitter: Callable[[], float] | None = None,
        meter: Any = None,
    ) -> None:
        self.schema = schema
        self.channel = notify_channel(schema)
        self.clock = clock
        self.jitter = jitter if jitter is not None else random.random
        self.metrics = EnqueueMetrics(meter)
        self._shards: dict[str, int] = {}
        self._widths: dict[str, int] = {}  # logical queue -> width keyed rows follow (0: the producer's)
        # physical queues of registered logical queues: single inserts call insert_job (ADR 0035)
        self._routed_queues: set[str] = set()
        self._rotor: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._copy_sql: dict[tuple[str, ...], str] = {}

    def copy_sql(self, columns: tuple[str, ...]) -> str:
        text = self._copy_sql.get(columns)
        if text is None:
            text = self._copy_sql[columns] = render(
                self.schema, f"COPY __schema__.jobs ({', '.join(columns)}) FROM STDIN WITH (NULL '')"
            )
        return text

    # -- helpers -----------------------------------------------------------

    def q(self, name: str) -> str:
        return query(self.schema, name)

    def now(self) -> dt.datetime | None:
        """The caller's clock, or None to let the database decide."""
        if self.clock is None:
            return None
        value = self.clock()
        if value.tzinfo is None:
            raise ValidationError("clock() must return a timezone-aware datetime")
        return value

    def rotate(self, queue: str, shards: int) -> int:
        # Unkeyed rows of one (queue, priority) share one shard per batch; the
        # rotor moves on per batch so successive batches spread evenly.
        with self._lock:
            key = (queue, shards)
            n = self._rotor.get(key, 0)
            self._rotor[key] = n + 1
        return n % shards
