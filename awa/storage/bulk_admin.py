"""awa-pg's bulk admin operations (no I/O): retry or discard failed jobs,
drain a queue, a liveness ping. Each takes the :class:`StorageCore` it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from awa.errors import ValidationError
from awa.storage.models import Job
from awa.storage.ops import Op, OpsBase, Query, jobs_of
from awa.storage.validate import check_name


@dataclass(frozen=True, slots=True)
class RetryFailedResult:
    """What :meth:`retry_failed` did (awa-pg's names).

    ``jobs``: the jobs put back to work; ``matched``: failed jobs the filter
    found (here always ``len(jobs)``: they are locked while retried);
    ``pruned_failed_count``: None (this package keeps no count of failed jobs
    deleted by retention).
    """

    jobs: list[Job] = field(default_factory=list)
    matched: int = 0
    pruned_failed_count: int | None = None


def retry_failed(core: OpsBase, kind: str | None, queue: str | None) -> Op:
    if (kind is None) == (queue is None):
        raise ValidationError("Specify exactly one of kind or queue")
    if kind is not None:
        check_name(kind, "kind")
    if queue is not None:
        check_name(queue, "queue")
    res = yield Query(
        core.q("retry_failed"), {"kind": kind, "queue": queue, "now": core.now(), "channel": core.channel}
    )
    jobs = jobs_of(res)
    return RetryFailedResult(jobs=jobs, matched=len(jobs), pruned_failed_count=None)


def discard_failed(core: OpsBase, kind: str) -> Op:
    check_name(kind, "kind")
    res = yield Query(core.q("discard_failed"), {"kind": kind})
    return int(res.rowcount)


def drain_queue(core: OpsBase, queue: str) -> Op:
    check_name(queue, "queue")
    res = yield Query(core.q("drain_queue"), {"queue": queue, "now": core.now()})
    return int(res.rows[0][0])


def completed_last_hour(core: OpsBase, queue: str | None) -> Op:
    """``{queue: jobs completed in the last hour}``."""
    res = yield Query(core.q("completed_last_hour"), {"queue": queue, "now": core.now()})
    return {name: int(n) for name, n in res.rows}


def ping(core: OpsBase) -> Op:
    res = yield Query(core.q("ping"), {})
    return bool(res.rows)
