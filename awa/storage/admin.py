"""Admin operations: jobs by id, queue settings and stats (no I/O; the
dead-letter queue is :mod:`awa.storage.dlq_ops`)."""

from __future__ import annotations

from typing import Any

from awa.errors import ValidationError
from awa.routing.names import split_partition
from awa.storage.bulk_admin import completed_last_hour
from awa.storage.models import LaneStat, QueueStat
from awa.storage.ops import Op, OpsBase, Query, jobs_of
from awa.storage.validate import check_id, check_queue, is_int


class AdminOps(OpsBase):
    def cancel_job(self, job_id: int) -> Op:
        check_id(job_id)
        res = yield Query(self.q("cancel_job"), {"id": job_id, "now": self.now()})
        jobs = jobs_of(res)
        return jobs[0] if jobs else None

    def get_job(self, job_id: int) -> Op:
        check_id(job_id)
        res = yield Query(self.q("get_job"), {"id": job_id})
        jobs = jobs_of(res)
        return jobs[0] if jobs else None

    def _upsert_queue(self, queue: str, **settings: Any) -> Op:
        check_queue(queue, "queue")
        params = {"queue": queue, "paused": None, "shards": None, "dlq": None, **settings}
        res = yield Query(self.q("upsert_queue"), params)
        name, _paused, shards, _dlq = res.rows[0]
        self._shards[name] = shards
        return None

    def pause_queue(self, queue: str, create: bool = False) -> Op:
        yield from self._check_known(queue, create, "pause")
        return (yield from self._upsert_queue(queue, paused=True))

    def resume_queue(self, queue: str, create: bool = False) -> Op:
        yield from self._check_known(queue, create, "resume")
        return (yield from self._upsert_queue(queue, paused=False))

    def queue_exists(self, queue: str) -> Op:
        """Whether ``queue`` was ever enqueued to or configured, or is a
        partition within its logical queue's registered width."""
        check_queue(queue, "queue")
        base, index = split_partition(queue) or (queue, 0)
        res = yield Query(self.q("queue_known"), {"queue": queue, "base": base, "index": index})
        return bool(res.rows[0][0])

    def _check_known(self, queue: str, create: bool, verb: str) -> Op:
        """ValidationError for a queue that does not exist, unless ``create``."""
        check_queue(queue, "queue")
        if create:
            return None
        known = yield from self.queue_exists(queue)
        if not known:
            raise ValidationError(
                f"unknown queue {queue!r}: no job was ever enqueued to it and no partitioned queue covers it; "
                f"check the name, or {verb} it ahead of its first job with create=True (awa queue {verb} --create)"
            )
        return None

    def set_enqueue_shards(self, queue: str, shards: int) -> Op:
        if not is_int(shards) or not 1 <= shards <= 64:
            raise ValidationError(f"enqueue_shards must be between 1 and 64, got {shards!r}")
        return (yield from self._upsert_queue(queue, shards=shards))

    def set_queue_dlq(self, queue: str, enabled: bool) -> Op:
        return (yield from self._upsert_queue(queue, dlq=bool(enabled)))

    def queue_stats(self, queue: str | None) -> Op:
        if queue is not None:
            check_queue(queue, "queue")
        now = self.now()
        res = yield Query(self.q("queue_stats"), {"queue": queue})
        lane_res = yield Query(self.q("lane_stats"), {"queue": queue, "now": now})
        recent = yield from completed_last_hour(self, queue)
        lanes: dict[str, list[LaneStat]] = {}
        for q, prio, shard, next_seq, claim_seq, available, head_run_at, as_of in lane_res.rows:
            age = None if head_run_at is None else max((as_of - head_run_at).total_seconds(), 0.0)
            lanes.setdefault(q, []).append(LaneStat(q, prio, shard, available, next_seq, claim_seq, age))
        out = []
        for name, paused, shards, dlq, sched, retry, running, done, failed, cancelled, dead in res.rows:
            q_lanes = lanes.get(name, [])
            ages = [l.oldest_available_age for l in q_lanes if l.oldest_available_age is not None]
            out.append(
                QueueStat(
                    queue=name,
                    scheduled=sched,
                    available=sum(l.available for l in q_lanes),
                    running=running,
                    retryable=retry,
                    completed=done,
                    failed=failed,
                    cancelled=cancelled,
                    dead_lettered=dead,
                    paused=paused,
                    enqueue_shards=shards,
                    dlq_enabled=dlq,
                    oldest_available_age=max(ages) if ages else None,
                    lanes=q_lanes,
                    completed_last_hour=recent.get(name, 0),
                )
            )
        return out
