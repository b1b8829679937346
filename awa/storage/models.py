"""Value objects returned by the clients."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any


_LABEL_OF = ("scheduled", "available", "running", "completed", "retryable", "failed", "cancelled")


class JobState(IntEnum):
    """Lifecycle state of a job, as awa-pg names it: ``JobState.Completed``,
    an ``IntEnum`` (``int()`` is awa-pg's number) whose ``str()`` is the
    database label (``"completed"``).

    The upper-case names (``JobState.COMPLETED``) are aliases of the same
    members, and ``.value`` stays the label, as it was before these names:
    ``JobState("completed")`` and ``JobState(3)`` both look a member up, and
    a member compares equal to its label (``job.state == "completed"``) and
    to its number; its hash is the number's.
    """

    def __new__(cls, number: int) -> JobState:
        member = int.__new__(cls, number)
        member._value_ = _LABEL_OF[number]
        return member

    Scheduled = 0
    Available = 1
    Running = 2
    Completed = 3
    Retryable = 4
    Failed = 5
    Cancelled = 6
    # Aliases (same members): the names this package used first.
    SCHEDULED = 0
    AVAILABLE = 1
    RUNNING = 2
    COMPLETED = 3
    RETRYABLE = 4
    FAILED = 5
    CANCELLED = 6

    @property
    def label(self) -> str:
        """The database enum label (``"completed"``)."""
        return self._value_

    def __str__(self) -> str:
        return self._value_

    def __format__(self, spec: str) -> str:
        return format(self._value_, spec)

    def __repr__(self) -> str:
        return f"JobState.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self._value_ == other
        return int.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = IntEnum.__hash__

    @classmethod
    def _missing_(cls, value: object) -> JobState | None:
        if isinstance(value, int) and not isinstance(value, bool):
            for member in cls:
                if int(member) == value:
                    return member
        return None

    @property
    def terminal(self) -> bool:
        return self in (JobState.Completed, JobState.Failed, JobState.Cancelled)


_STATES = {s.value: s for s in JobState}


@dataclass(frozen=True, slots=True)
class Job:
    """One job row. ``ordering_key`` is the stored key bytes (kept on retry)."""

    id: int
    kind: str
    queue: str
    args: Any
    priority: int
    attempt: int
    max_attempts: int
    run_lease: int
    state: JobState
    ordering_key: bytes | None
    enqueue_shard: int
    lane_seq: int | None
    run_at: dt.datetime
    created_at: dt.datetime
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    attempted_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    deadline_at: dt.datetime | None = None
    finalized_at: dt.datetime | None = None
    progress: Any = None
    # per-key concurrency (ADR 0020): the stored key bytes, None when not given
    concurrency_key: bytes | None = None

    @property
    def deadline(self) -> dt.datetime | None:
        """awa-pg's name for ``deadline_at``."""
        return self.deadline_at

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context stored in ``metadata["traceparent"]``, if any."""
        value = self.metadata.get("traceparent")
        return value if isinstance(value, str) else None

    @property
    def lane(self) -> tuple[str, int, int]:
        """The lane this job belongs to: (queue, priority, enqueue_shard)."""
        return (self.queue, self.priority, self.enqueue_shard)

    @classmethod
    def from_row(cls, names: Sequence[str], row: Sequence[Any]) -> Job:
        return cls.from_rows(names, (row,))[0]

    @classmethod
    def from_rows(cls, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Job]:
        """Build many jobs from rows sharing one column list.

        The worker claims hundreds of rows per round trip, and the frozen
        dataclass ``__init__`` (one ``object.__setattr__`` per field) was the
        largest cost of a claim; writing the slots directly is ~4x cheaper and
        yields the same values. Column positions are looked up once per call.
        """
        plain, at_state, at_key, at_tags, at_meta, at_errors, at_ckey = _row_layout(names)
        set_state, set_key, set_tags, set_meta, set_errors, set_ckey = _CONVERTED_SETTERS
        states = _STATES
        new = object.__new__
        out: list[Job] = []
        append = out.append
        for row in rows:
            job = new(cls)
            for put, at in plain:
                put(job, row[at])
            set_state(job, states[row[at_state]])
            key = row[at_key]
            set_key(job, bytes(key) if key is not None else None)
            set_tags(job, list(row[at_tags] or []))
            set_meta(job, dict(row[at_meta] or {}))
            set_errors(job, list(row[at_errors] or []))
            ckey = row[at_ckey]
            set_ckey(job, bytes(ckey) if ckey is not None else None)
            append(job)
        return out

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Job:
        """A job from one value per field, in the order of
        ``dataclasses.fields(Job)``, taken as they are (no conversion): what
        the enqueue paths build for the jobs they return, a slot write apiece
        instead of the frozen ``__init__``."""
        job = object.__new__(cls)
        for put, value in zip(_ALL_SETTERS, values, strict=True):
            put(job, value)
        return job


# Slot descriptors of Job, to fill a frozen instance without its __init__.
_SLOT_SETTERS = {f.name: getattr(Job, f.name).__set__ for f in fields(Job)}
_ALL_SETTERS = tuple(_SLOT_SETTERS.values())
_CONVERTED_FIELDS = frozenset({"state", "ordering_key", "tags", "metadata", "errors", "concurrency_key"})
_PLAIN_FIELDS = tuple(f.name for f in fields(Job) if f.name not in _CONVERTED_FIELDS)
_CONVERTED_SETTERS = tuple(_SLOT_SETTERS[f] for f in ("state", "ordering_key", "tags", "metadata", "errors",
                                                       "concurrency_key"))
_LAYOUTS: dict[tuple[str, ...], tuple[Any, ...]] = {}


def _row_layout(names: Sequence[str]) -> tuple[Any, ...]:
    """Column positions for Job fields in a result with these column names
    (cached: a handful of distinct queries build jobs). KeyError when a field is missing."""
    key = tuple(names)
    layout = _LAYOUTS.get(key)
    if layout is None:
        pos = {name: i for i, name in enumerate(key)}
        plain = tuple((_SLOT_SETTERS[f], pos[f]) for f in _PLAIN_FIELDS)
        layout = (plain, pos["state"], pos["ordering_key"], pos["tags"], pos["metadata"], pos["errors"],
                  pos["concurrency_key"])
        if len(_LAYOUTS) < 64:
            _LAYOUTS[key] = layout
    return layout


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """A dead-lettered job with why and when it was moved."""

    job: Job
    reason: str
    dlq_at: dt.datetime

    @property
    def original_run_lease(self) -> int:
        """awa-pg's name: the run_lease of the job's final attempt."""
        return self.job.run_lease

    @classmethod
    def from_row(cls, names: Sequence[str], row: Sequence[Any]) -> DlqEntry:
        r = dict(zip(names, row))
        return cls(job=Job.from_row(names, row), reason=r["reason"], dlq_at=r["dlq_at"])


@dataclass(frozen=True, slots=True)
class LaneStat:
    """One lane (queue, priority, enqueue_shard) of a physical queue."""

    queue: str
    priority: int
    enqueue_shard: int
    available: int
    next_seq: int
    claim_seq: int
    oldest_available_age: float | None  # seconds, None when the lane is empty


@dataclass(frozen=True, slots=True)
class QueueStat:
    """Counts for one physical queue. Ages are seconds."""

    queue: str
    scheduled: int
    available: int
    running: int
    retryable: int
    completed: int
    failed: int
    cancelled: int
    dead_lettered: int
    paused: bool
    enqueue_shards: int
    dlq_enabled: bool
    oldest_available_age: float | None
    lanes: list[LaneStat]
    completed_last_hour: int = 0  # awa-pg's name: jobs completed in the last hour

    @property
    def waiting_external(self) -> int:
        """Always 0: awa-pg's external-callback state does not exist here."""
        return 0

    @property
    def total_queued(self) -> int:
        """Jobs that still have to run: scheduled + available + retryable."""
        return self.scheduled + self.available + self.retryable

    @property
    def lag_seconds(self) -> float | None:
        return self.oldest_available_age
