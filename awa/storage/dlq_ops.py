"""The dead-letter queue (no I/O): entries one at a time and in bulk, with
awa-pg's names, filters and return values.

Entries are the failed job's row plus ``reason`` and ``dlq_at``, off every
claim path. One at a time: list, get, depth, retry, purge, move. In bulk,
each one statement: :meth:`DlqOps.bulk_retry_from_dlq`,
:meth:`DlqOps.bulk_move_failed_to_dlq` and :meth:`DlqOps.purge_dlq`. A bulk
call without a kind, queue or tag refuses to act on everything unless
``allow_all=True`` (awa-pg's guard, and its error text).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from awa.errors import ValidationError
from awa.routing.hashes import shard_for_ordering_key
from awa.storage.models import DlqEntry
from awa.storage.ops import Op, OpsBase, Query, jobs_of
from awa.storage.validate import check_id, check_limit, check_name, check_priority, check_queue, check_run_at, check_tags, check_text


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which entries a DLQ call acts on (None: any); validated on creation."""

    kind: str | None = None
    queue: str | None = None
    tag: str | None = None
    before_id: int | None = None
    before_dlq_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.kind is not None:
            check_name(self.kind, "kind")
        if self.queue is not None:
            check_queue(self.queue, "queue")
        if self.tag is not None:
            check_tags([check_text(self.tag, "tag")])
        if self.before_id is not None:
            check_id(self.before_id, "before_id")
        object.__setattr__(self, "before_dlq_at", check_run_at(self.before_dlq_at, "before_dlq_at"))

    @property
    def scoped(self) -> bool:
        """Whether a kind, queue or tag narrows it (a cursor alone does not)."""
        return self.kind is not None or self.queue is not None or self.tag is not None

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queue": self.queue,
            "tag": self.tag,
            "before_id": self.before_id,
            "before_dlq_at": self.before_dlq_at,
        }


def _check_allow_all(allow_all: Any) -> bool:
    if not isinstance(allow_all, bool):
        raise ValidationError(f"allow_all must be True or False, got {allow_all!r}")
    return allow_all


class DlqOps(OpsBase):
    # -- one entry ---------------------------------------------------------

    def list_dlq(
        self,
        queue: str | None,
        kind: str | None,
        limit: int,
        tag: str | None = None,
        before_id: int | None = None,
        before_dlq_at: dt.datetime | str | None = None,
    ) -> Op:
        """Entries newest first (``dlq_at``, then id, descending); pass the
        last entry's ``dlq_at`` and id as ``before_dlq_at``/``before_id`` for
        the next page."""
        where = DlqFilter(kind, queue, tag, before_id, before_dlq_at)  # type: ignore[arg-type]
        check_limit(limit, minimum=1)
        res = yield Query(self.q("dlq_list"), {**where.params(), "limit": limit})
        return [DlqEntry.from_row(res.names, r) for r in res.rows]

    def get_dlq_job(self, job_id: int) -> Op:
        check_id(job_id)
        res = yield Query(self.q("dlq_get"), {"id": job_id})
        return DlqEntry.from_row(res.names, res.rows[0]) if res.rows else None

    def dlq_depth(self, queue: str | None) -> Op:
        if queue is not None:
            check_queue(queue, "queue")
        res = yield Query(self.q("dlq_depth"), {"queue": queue})
        return int(res.rows[0][0])

    def purge_dlq_job(self, job_id: int) -> Op:
        check_id(job_id)
        res = yield Query(self.q("dlq_purge"), {"id": job_id})
        return bool(res.rows)

    def move_failed_to_dlq(self, job_id: int, reason: str) -> Op:
        """Move one failed job into the DLQ; its :class:`DlqEntry`, or None
        when it is not a failed job (run in one transaction)."""
        check_id(job_id)
        check_text(reason, "reason")
        res = yield Query(self.q("move_failed_to_dlq"), {"id": job_id, "reason": reason, "now": self.now()})
        if not res.rows[0][0]:
            return None
        return (yield from self.get_dlq_job(job_id))

    def retry_from_dlq(
        self, job_id: int, run_at: dt.datetime | None, priority: int | None, queue: str | None
    ) -> Op:
        check_id(job_id)
        run_at = check_run_at(run_at)
        if priority is not None:
            check_priority(priority)
        shard = None
        if queue is not None:
            check_queue(queue, "queue")
            entry_res = yield Query(self.q("dlq_get"), {"id": job_id})
            if not entry_res.rows:
                return None
            entry = DlqEntry.from_row(entry_res.names, entry_res.rows[0])
            if queue != entry.job.queue:
                shard_res = yield Query(self.q("queue_shards"), {"queues": [queue]})
                shards = shard_res.rows[0][1] if shard_res.rows else 1
                key = entry.job.ordering_key
                shard = shard_for_ordering_key(key, shards) if key is not None else self.rotate(queue, shards) if shards > 1 else 0
        res = yield Query(
            self.q("dlq_retry"),
            {
                "id": job_id,
                "now": self.now(),
                "run_at": run_at,
                "priority": priority,
                "queue": queue,
                "shard": shard,
                "channel": self.channel,
            },
        )
        jobs = jobs_of(res)
        return jobs[0] if jobs else None

    # -- in bulk: one statement each -----------------------------------------

    def bulk_retry_from_dlq(self, kind: str | None, queue: str | None, tag: str | None, allow_all: bool) -> Op:
        """Every matching entry back to work; the number retried."""
        where = DlqFilter(kind, queue, tag)
        if not _check_allow_all(allow_all) and not where.scoped:
            raise ValidationError(
                "bulk_retry_from_dlq requires at least one of kind, queue, or tag (or allow_all=true)"
            )
        params = {"kind": where.kind, "queue": where.queue, "tag": where.tag, "now": self.now(), "channel": self.channel}
        res = yield Query(self.q("dlq_retry_matching"), params)
        return int(res.rows[0][0])

    def bulk_move_failed_to_dlq(self, kind: str | None, queue: str | None, reason: str, allow_all: bool) -> Op:
        """Every failed job of ``kind`` and/or ``queue`` into the DLQ; the number moved."""
        if kind is not None:
            check_name(kind, "kind")
        if queue is not None:
            check_queue(queue, "queue")
        check_text(reason, "reason")
        if not _check_allow_all(allow_all) and kind is None and queue is None:
            raise ValidationError(
                "bulk_move_failed_to_dlq requires at least one of kind or queue (or allow_all=true)"
            )
        params = {"kind": kind, "queue": queue, "reason": reason, "now": self.now()}
        res = yield Query(self.q("move_failed_to_dlq_matching"), params)
        return int(res.rows[0][0])

    def purge_dlq(
        self,
        kind: str | None,
        queue: str | None,
        tag: str | None,
        before_id: int | None,
        before_dlq_at: dt.datetime | str | None,
        allow_all: bool,
    ) -> Op:
        """Delete the matching entries; the number deleted."""
        where = DlqFilter(kind, queue, tag, before_id, before_dlq_at)  # type: ignore[arg-type]
        if not _check_allow_all(allow_all) and not where.scoped:
            raise ValidationError("purge_dlq requires at least one of kind, queue, or tag (or allow_all=true)")
        res = yield Query(self.q("dlq_purge_matching"), where.params())
        return int(res.rowcount)
