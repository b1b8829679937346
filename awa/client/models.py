"""Value objects returned by the clients."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class JobState(str, Enum):
    """Lifecycle state of a job; the value is the database enum label."""

    SCHEDULED = "scheduled"
    AVAILABLE = "available"
    RUNNING = "running"
    COMPLETED = "completed"
    RETRYABLE = "retryable"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


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

    @property
    def lane(self) -> tuple[str, int, int]:
        """The lane this job belongs to: (queue, priority, enqueue_shard)."""
        return (self.queue, self.priority, self.enqueue_shard)

    @classmethod
    def from_row(cls, names: Sequence[str], row: Sequence[Any]) -> Job:
        r = dict(zip(names, row))
        return cls(
            id=r["id"],
            kind=r["kind"],
            queue=r["queue"],
            args=r["args"],
            priority=r["priority"],
            attempt=r["attempt"],
            max_attempts=r["max_attempts"],
            run_lease=r["run_lease"],
            state=_STATES[r["state"]],
            ordering_key=bytes(r["ordering_key"]) if r["ordering_key"] is not None else None,
            enqueue_shard=r["enqueue_shard"],
            lane_seq=r["lane_seq"],
            run_at=r["run_at"],
            created_at=r["created_at"],
            tags=list(r["tags"] or []),
            metadata=dict(r["metadata"] or {}),
            errors=list(r["errors"] or []),
            attempted_at=r["attempted_at"],
            heartbeat_at=r["heartbeat_at"],
            deadline_at=r["deadline_at"],
            finalized_at=r["finalized_at"],
            progress=r["progress"],
        )


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """A dead-lettered job with why and when it was moved."""

    job: Job
    reason: str
    dlq_at: dt.datetime

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

    @property
    def total_queued(self) -> int:
        """Jobs that still have to run: scheduled + available + retryable."""
        return self.scheduled + self.available + self.retryable

    @property
    def lag_seconds(self) -> float | None:
        return self.oldest_available_age
