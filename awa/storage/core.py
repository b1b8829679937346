"""The storage operations of the clients and the worker, written once (no I/O).

:class:`StorageCore` adds enqueue, claims, leases and maintenance to the
admin operations. Every method returns an operation generator (see
:mod:`awa.storage.ops`); the sync and async drivers run the same generators,
so ``Client``, ``AsyncClient`` and the worker share every line of behaviour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from awa.errors import AwaError, ValidationError
from awa.storage import lanes as lane_routing
from awa.storage import unique as unique_keys
from awa.storage.admin import AdminOps
from awa.storage.batch import Batch
from awa.storage.codec import dumps, loads
from awa.storage.copy_rows import copy_buffer
from awa.storage.housekeeping import HousekeepingOps
from awa.storage.joblist import JobOps
from awa.storage.models import Job, JobState
from awa.storage.cron_ops import CronOps
from awa.storage.unique_ops import UniqueOps
from awa.storage.ops import Copy, Op, Query, error_text, id_lease_pairs, int_array, text_array
from awa.storage.validate import check_name, is_int, seconds

MAX_BACKOFF_SECONDS = 86_400.0
_SHARD_RETRIES = 8


class StorageCore(JobOps, HousekeepingOps, AdminOps, UniqueOps, CronOps):
    """Every storage operation of one schema."""

    # -- enqueue -----------------------------------------------------------

    def enqueue(self, batch: Batch, want_jobs: bool) -> Op:
        if batch.n == 0:
            return [] if want_jobs else 0
        now = self.now()
        queues = batch.touched_queues()
        for _ in range(_SHARD_RETRIES):
            expected = [self._shards.get(q, 1) for q in queues]
            lanes = lane_routing.route(batch, dict(zip(queues, expected)), self.rotate)
            res = yield Query(
                self.q("enqueue_reserve"),
                {
                    "queues": text_array(queues),
                    "expected": int_array(expected),
                    "lane_queue": text_array([l.queue for l in lanes]),
                    "lane_priority": int_array([batch.priority] * len(lanes)),
                    "lane_shard": int_array([l.shard for l in lanes]),
                    "lane_count": int_array(lane_routing.lane_counts(lanes, batch.n)),
                    "run_at": batch.run_at,
                    "now": now,
                    "id_count": batch.n,
                    "channel": self.channel,
                },
            )
            db_now, scheduled, shards_ok, shards, starts, id_starts, id_lengths = res.rows[0]
            if shards_ok:
                break
            for q, s in zip(queues, shards):
                self._shards[q] = s
        else:  # pragma: no cover - needs enqueue_shards to change 8 times in a row
            raise AwaError("enqueue_shards kept changing while routing the batch; try again")

        use_starts = None if scheduled else list(starts)
        ids = _expand_runs(id_starts, id_lengths)  # lane order
        columns, data = copy_buffer(batch, lanes, use_starts, db_now, scheduled, ids, now is not None)
        yield Copy(self.copy_sql(columns), data)
        if batch.unique is not None:  # same transaction: a held key rolls the batch back
            u_ids, u_keys, u_masks = unique_keys.key_columns(batch, lanes, ids)
            yield Query(self.q("set_unique_keys"), {"ids": int_array(u_ids), "keys": u_keys, "states": u_masks})

        counts: dict[str, int] = {}
        for lane in lanes:
            counts[lane.queue] = counts.get(lane.queue, 0) + lane.count(batch.n)
        self.metrics.record(counts)
        if not want_jobs:
            return batch.n
        return self._jobs_for(batch, lanes, use_starts, db_now, scheduled, ids)

    def insert_one(self, batch: Batch) -> Op:
        """One job, one statement (one round trip on an autocommit connection)."""
        if batch.unique is not None:  # the batch path sets the key (run it in a transaction)
            jobs = yield from self.enqueue(batch, True)
            return jobs[0]
        now = self.now()
        queue = batch.queue
        for _ in range(_SHARD_RETRIES):
            expected = self._shards.get(queue, 1)
            [lane] = lane_routing.route(batch, {queue: expected}, self.rotate)
            res = yield Query(
                self.q("insert_job"),
                {
                    "queue": queue,
                    "expected": expected,
                    "priority": batch.priority,
                    "shard": lane.shard,
                    "kind": batch.kind,
                    "args": batch.args_text[0],
                    "max_attempts": batch.max_attempts,
                    "tags": batch.tags or None,
                    "metadata": dumps(batch.metadata) if batch.metadata else None,
                    "ordering_key": batch.key,
                    "run_at": batch.run_at,
                    "now": now,
                    "channel": self.channel,
                },
            )
            if res.rows:
                self.metrics.record({queue: 1})
                return Job.from_row(res.names, res.rows[0])
            fresh = yield Query(self.q("queue_shards"), {"queues": [queue]})
            self._shards[queue] = fresh.rows[0][1] if fresh.rows else 1
        raise AwaError("enqueue_shards kept changing while routing the job; try again")  # pragma: no cover

    def _jobs_for(
        self,
        batch: Batch,
        lanes: list[lane_routing.Lane],
        starts: list[int] | None,
        now: dt.datetime,
        scheduled: bool,
        ids: list[int],
    ) -> list[Job]:
        out: list[Job | None] = [None] * batch.n
        state = JobState.SCHEDULED if scheduled else JobState.AVAILABLE
        pos = 0  # ids come in lane order
        run_at = batch.run_at or now
        keys = batch.row_keys()
        kinds = batch.kinds
        for lane_no, lane in enumerate(lanes):
            rows = lane.rows if lane.rows is not None else range(batch.n)
            for offset, i in enumerate(rows):
                out[i] = Job(
                    id=ids[pos + offset],
                    kind=kinds if isinstance(kinds, str) else kinds[i],
                    queue=lane.queue,
                    args=loads(batch.args_text[i]),
                    priority=batch.priority,
                    attempt=0,
                    max_attempts=batch.max_attempts,
                    run_lease=0,
                    state=state,
                    ordering_key=keys[i],
                    enqueue_shard=lane.shard,
                    lane_seq=None if starts is None else starts[lane_no] + offset,
                    run_at=run_at,
                    created_at=now,
                    tags=list(batch.tags),
                    metadata=dict(batch.metadata),
                    errors=[],
                )
            pos += len(rows)
        return out  # type: ignore[return-value]

    # -- claims and leases -------------------------------------------------

    def claim(
        self,
        queues: Sequence[str] | str,
        limit: int,
        deadline_ms: int | None,
        aging_ms: int | None = None,
        limits: Sequence[int] | None = None,
    ) -> Op:
        """``limits`` (one per queue) claims up to that many from each queue in one
        round trip; ``limit`` then caps only the total."""
        if isinstance(queues, str):
            queues = [queues]
        queue_list = [check_name(q, "queue") for q in queues]
        if not is_int(limit) or limit < 0:
            raise ValidationError(f"limit must be a non-negative integer, got {limit!r}")
        if limits is not None:
            limits = list(limits)
            if len(limits) != len(queue_list):
                raise ValidationError(f"limits needs one entry per queue: {len(limits)} for {len(queue_list)} queues")
            for value in limits:
                if not is_int(value) or value < 0:
                    raise ValidationError(f"each per-queue limit must be a non-negative integer, got {value!r}")
            if sum(limits) > limit:
                raise ValidationError(f"per-queue limits add up to {sum(limits)}, above limit {limit}")
        if deadline_ms is not None and (not is_int(deadline_ms) or deadline_ms <= 0):
            raise ValidationError(f"deadline_ms must be a positive integer, got {deadline_ms!r}")
        if aging_ms is not None and (not is_int(aging_ms) or aging_ms < 0):
            raise ValidationError(f"priority_aging_interval_ms must be a non-negative integer, got {aging_ms!r}")
        if limit == 0 or not queue_list:
            return []
        deadline = None if deadline_ms is None else dt.timedelta(milliseconds=deadline_ms)
        aging = dt.timedelta(milliseconds=aging_ms) if aging_ms else None  # 0 = off
        if limits is not None:
            caps: dict[str, int] = {}
            for q, n in zip(queue_list, limits):
                if n > 0:
                    caps[q] = caps.get(q, 0) + n  # a name given twice gets both caps
            if not caps:
                return []
            res = yield Query(
                self.q("claim_many"),
                {
                    "queues": text_array(caps),
                    "limits": int_array(caps.values()),
                    "total": sum(caps.values()),
                    "now": self.now(),
                    "deadline": deadline,
                    "aging": aging,
                },
            )
            return Job.from_rows(res.names, res.rows)
        res = yield Query(
            self.q("claim"),
            {"queues": queue_list, "limit": limit, "now": self.now(), "deadline": deadline, "aging": aging},
        )
        return Job.from_rows(res.names, res.rows)

    def complete(self, job_id: int, run_lease: int) -> Op:
        res = yield Query(self.q("complete"), {"id": job_id, "lease": run_lease, "now": self.now()})
        return bool(res.rows)

    def complete_many(self, items: Iterable[tuple[int, int]]) -> Op:
        ids, leases = id_lease_pairs(items)
        if not ids:
            return []
        res = yield Query(
            self.q("complete_many"), {"ids": int_array(ids), "leases": int_array(leases), "now": self.now()}
        )
        done = {(r[0], r[1]) for r in res.rows}
        return [pair in done for pair in zip(ids, leases)]

    def heartbeat(self, job_id: int, run_lease: int, progress: Any = None) -> Op:
        params = {
            "id": job_id,
            "lease": run_lease,
            "now": self.now(),
            "set_progress": progress is not None,
            "progress": Jsonb(progress) if progress is not None else None,
        }
        res = yield Query(self.q("heartbeat"), params)
        return bool(res.rows)

    def heartbeat_many(self, items: Iterable[tuple[int, int]]) -> Op:
        ids, leases = id_lease_pairs(items)
        if not ids:
            return []
        res = yield Query(
            self.q("heartbeat_many"), {"ids": int_array(ids), "leases": int_array(leases), "now": self.now()}
        )
        alive = {(r[0], r[1]) for r in res.rows}
        return [pair in alive for pair in zip(ids, leases)]

    def cancel(self, job_id: int, run_lease: int) -> Op:
        res = yield Query(self.q("cancel_leased"), {"id": job_id, "lease": run_lease, "now": self.now()})
        return bool(res.rows)

    def finish(self, job_id: int, run_lease: int, mode: str, error: Any, delay: float | None) -> Op:
        """Lease-guarded fail / retry / snooze; returns the outcome word ('stale', ...)."""
        res = yield Query(
            self.q("finish_attempt"),
            {
                "id": job_id,
                "lease": run_lease,
                "now": self.now(),
                "mode": mode,
                "error": error_text(error),
                "delay": delay,
                "jitter": float(self.jitter()),
                "channel": self.channel,
            },
        )
        return res.rows[0][0]

    def fail(self, job_id: int, run_lease: int, error: Any) -> Op:
        outcome = yield from self.finish(job_id, run_lease, "fail", error if error is not None else "failed", None)
        return outcome != "stale"

    def retry(self, job_id: int, run_lease: int, after_seconds: Any, error: Any) -> Op:
        delay = seconds(after_seconds, "after_seconds")
        outcome = yield from self.finish(job_id, run_lease, "retry", error, delay)
        return outcome != "stale"

    def snooze(self, job_id: int, run_lease: int, delay_s: Any) -> Op:
        delay = seconds(delay_s, "seconds")
        if delay is None:
            raise ValidationError("seconds must be a finite number of seconds, got None")
        outcome = yield from self.finish(job_id, run_lease, "snooze", None, delay)
        return outcome != "stale"

    # -- maintenance -------------------------------------------------------

    def promote_due(self, limit: int) -> Op:
        res = yield Query(self.q("promote_due"), {"now": self.now(), "limit": limit, "channel": self.channel})
        return int(res.rows[0][0])

    def rescue_expired(self, heartbeat_timeout: float, limit: int) -> Op:
        timeout = dt.timedelta(seconds=seconds(heartbeat_timeout, "heartbeat_timeout") or 0.0)
        res = yield Query(
            self.q("rescue_expired"),
            {
                "now": self.now(),
                "timeout": timeout,
                "limit": limit,
                "jitter": float(self.jitter()),
                "channel": self.channel,
            },
        )
        return [(r[0], r[1], r[2]) for r in res.rows]


def _expand_runs(starts: Sequence[int], lengths: Sequence[int]) -> list[int]:
    out: list[int] = []
    for first, n in zip(starts, lengths):
        out.extend(range(first, first + n))
    return out


def backoff_seconds(attempt: int, jitter: float) -> float:
    """The retry delay the database applies: ``min(2**attempt + jitter, 24 h)``."""
    return min(2.0**attempt + jitter, MAX_BACKOFF_SECONDS)
