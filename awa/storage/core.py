"""The storage operations of the clients and the worker, written once (no I/O).

:class:`StorageCore` adds enqueue, claims, leases and maintenance to the
admin operations. Every method returns an operation generator (see
:mod:`awa.storage.ops`); the sync and async drivers run the same generators,
so ``Client``, ``AsyncClient`` and the worker share every line of behaviour.
"""

from __future__ import annotations

import datetime as dt
import logging
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
from awa.storage.keys import KeyPolicyOps
from awa.storage.models import Job, JobState
from awa.storage.cron_ops import CronOps
from awa.storage.unique_ops import UniqueOps
from awa.storage.schema_check import SchemaCheckOps
from awa.storage.dlq_ops import DlqOps
from awa.storage.repartition import RepartitionOps, logical_of, reroute_batch
from awa.storage.ops import BadRow, Copy, Op, Query, TxId, error_text, id_lease_pairs, int_array, text_array
from awa.storage.validate import (
    MAX_INT4,
    check_delay,
    check_duration_ms,
    check_id,
    check_json,
    check_limit,
    check_queue,
    check_timeout,
    is_int,
)

MAX_BACKOFF_SECONDS = 86_400.0
_SHARD_RETRIES = 8

log = logging.getLogger("awa.storage")


class StorageCore(
    JobOps, HousekeepingOps, AdminOps, KeyPolicyOps, UniqueOps, CronOps, SchemaCheckOps, DlqOps, RepartitionOps
):
    """Every storage operation of one schema."""

    # -- enqueue -----------------------------------------------------------

    def enqueue(self, batch: Batch, want_jobs: bool, concurrency_keys: list[bytes | None] | None = None) -> Op:
        if batch.n == 0:
            return [] if want_jobs else 0
        now = self.now()
        for _ in range(_SHARD_RETRIES):
            # Re-routed with the widths of queues that changed width (ADR 0024).
            batch = reroute_batch(batch, self._widths)
            queues = batch.touched_queues()
            expected = [self._shards.get(q, 1) for q in queues]
            widths = [self._widths.get(logical_of(q)[0], 0) for q in queues]
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
                    "widths": int_array(widths),
                },
            )
            db_now, scheduled, shards_ok, shards, starts, id_starts, id_lengths, widths_ok, fresh, xact_id = res.rows[0]
            yield TxId(xact_id)  # a COMMIT whose answer is lost is read back (ADR 0038)
            if not widths_ok:
                for q, w in zip(queues, fresh):
                    self._widths[logical_of(q)[0]] = int(w)
                continue
            if shards_ok:
                break
            for q, s in zip(queues, shards):
                self._shards[q] = s
        else:  # pragma: no cover - needs enqueue_shards to change 8 times in a row
            raise AwaError("enqueue_shards or a partition width kept changing while routing the batch; try again")

        use_starts = None if scheduled else list(starts)
        ids = _expand_runs(id_starts, id_lengths)  # lane order
        columns, data = copy_buffer(batch, lanes, use_starts, db_now, scheduled, ids, now is not None)
        yield Copy(self.copy_sql(columns), data)
        if concurrency_keys is not None:  # per-key concurrency (storage/keys.py)
            yield from self._set_concurrency_keys(batch, lanes, ids, concurrency_keys)
        if batch.unique is not None:  # same transaction: a held key rolls the batch back
            u_ids, u_keys, u_masks = unique_keys.key_columns(batch, lanes, ids)
            yield Query(self.q("set_unique_keys"), {"ids": int_array(u_ids), "keys": u_keys, "states": u_masks})

        counts: dict[str, int] = {}
        for lane in lanes:
            counts[lane.queue] = counts.get(lane.queue, 0) + lane.count(batch.n)
        self.metrics.record(counts)
        if not want_jobs:
            return batch.n
        return self._jobs_for(batch, lanes, use_starts, db_now, scheduled, ids, concurrency_keys)

    def _set_concurrency_keys(
        self, batch: Batch, lanes: list[lane_routing.Lane], ids: list[int], keys: list[bytes | None]
    ) -> Op:
        row_ids = [0] * batch.n
        pos = 0  # ids come in lane order
        for lane in lanes:
            rows = lane.rows if lane.rows is not None else range(batch.n)
            for offset, i in enumerate(rows):
                row_ids[i] = ids[pos + offset]
            pos += len(rows)
        pairs = [(row_ids[i], k) for i, k in enumerate(keys) if k is not None]
        if pairs:
            yield Query(self.q("set_concurrency_keys"),
                        {"ids": int_array(p[0] for p in pairs), "keys": [p[1] for p in pairs]})

    def insert_one(self, batch: Batch, concurrency_key: bytes | None = None, own_transaction: bool = False) -> Op:
        """One job, one statement (one round trip on an autocommit connection).
        ``own_transaction``: the call runs in a transaction of its own (a
        pooled connection, or an idle autocommit one), so ``insert_job`` may
        mark the queue for the fast statement (ADR 0040)."""
        if batch.unique is not None:  # the batch path sets the key (run it in a transaction)
            jobs = yield from self.enqueue(batch, True, None if concurrency_key is None else [concurrency_key])
            return jobs[0]
        now = self.now()
        queue = batch.queue
        params = {
            "queue": queue,
            "priority": batch.priority,
            "kind": batch.kind,
            "args": batch.args_text[0],
            "max_attempts": batch.max_attempts,
            "tags": batch.tags or None,
            "metadata": dumps(batch.metadata) if batch.metadata else None,
            "ordering_key": batch.key,
            "now": now,
            "channel": self.channel,
            "concurrency_key": concurrency_key,
        }
        # ADR 0035: the common case is one plain statement; anything it does not
        # handle (it writes nothing then) goes to the insert_job function.
        fast = batch.run_at is None and queue not in self._routed_queues
        for _ in range(_SHARD_RETRIES):
            expected = self._shards.get(queue, 1)
            [lane] = lane_routing.route(batch, {queue: expected}, self.rotate)
            params["expected"], params["shard"] = expected, lane.shard
            if fast:
                fast = False
                job_id, created_at, _ = (yield Query(self.q("insert_job_fast"), params)).rows[0]
                if job_id is not None:  # written into the lane it was sent to, due now
                    return self._inserted(batch, (job_id, queue, lane.shard, "available", created_at), concurrency_key)
            mark = own_transaction and queue not in self._routed_queues
            res = yield Query(self.q("insert_job"), {**params, "run_at": batch.run_at, "mark_fast": mark})
            if res.rows:
                if res.rows[0][5]:  # a registered logical queue: the database routes its jobs
                    self._routed_queues.add(queue)
                return self._inserted(batch, res.rows[0], concurrency_key)
            fresh = yield Query(self.q("queue_shards"), {"queues": [queue]})
            self._shards[queue] = fresh.rows[0][1] if fresh.rows else 1
        raise AwaError("enqueue_shards kept changing while routing the job; try again")  # pragma: no cover

    def _inserted(self, batch: Batch, row: Sequence[Any], concurrency_key: bytes | None) -> Job:
        """The job a single insert wrote, from the row its statement returned."""
        job_id, job_queue, shard, state, created_at = row[:5]
        self.metrics.record({job_queue: 1})
        return _new_job(batch, 0, job_id, batch.kind, job_queue, batch.key, shard, None,
                        JobState.SCHEDULED if state == "scheduled" else JobState.AVAILABLE,
                        batch.run_at or created_at, created_at, concurrency_key)

    def _jobs_for(
        self,
        batch: Batch,
        lanes: list[lane_routing.Lane],
        starts: list[int] | None,
        now: dt.datetime,
        scheduled: bool,
        ids: list[int],
        concurrency_keys: list[bytes | None] | None = None,
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
                out[i] = _new_job(batch, i, ids[pos + offset], kinds if isinstance(kinds, str) else kinds[i],
                                  lane.queue, keys[i], lane.shard,
                                  None if starts is None else starts[lane_no] + offset, state, run_at, now,
                                  None if concurrency_keys is None else concurrency_keys[i])
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
        if not isinstance(queues, (list, tuple)):
            raise ValidationError(f"queues must be a queue name or a list of them, got {type(queues).__name__}")
        queue_list = [check_queue(q, "queue") for q in queues]
        if not is_int(limit) or limit < 0:
            raise ValidationError(f"limit must be a non-negative integer, got {limit!r}")
        if limit > MAX_INT4:
            raise ValidationError(f"limit must be an integer between 0 and {MAX_INT4}, got {limit!r}")
        if limits is not None:
            if not isinstance(limits, (list, tuple)):
                raise ValidationError(f"limits must be a list of integers, got {type(limits).__name__}")
            limits = list(limits)
            if len(limits) != len(queue_list):
                raise ValidationError(f"limits needs one entry per queue: {len(limits)} for {len(queue_list)} queues")
            for value in limits:
                if not is_int(value) or value < 0:
                    raise ValidationError(f"each per-queue limit must be a non-negative integer, got {value!r}")
                if value > MAX_INT4:
                    raise ValidationError(f"each per-queue limit must be at most {MAX_INT4}, got {value!r}")
            if sum(limits) > limit:
                raise ValidationError(f"per-queue limits add up to {sum(limits)}, above limit {limit}")
        if deadline_ms is not None:
            check_duration_ms(deadline_ms, "deadline_ms", minimum=1)
        if aging_ms is not None:
            check_duration_ms(aging_ms, "priority_aging_interval_ms", minimum=0)
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
                isolate=True,
            )
            return (yield from self._claimed(res))
        res = yield Query(
            self.q("claim"),
            {"queues": queue_list, "limit": limit, "now": self.now(), "deadline": deadline, "aging": aging},
            isolate=True,
        )
        return (yield from self._claimed(res))

    def _claimed(self, res: Any) -> Op:
        """The claimed jobs; a row that does not decode fails its attempt
        (lease-guarded, to the DLQ where the queue has one) instead of the
        whole claim, which would strand the other rows as running."""
        bad = list(res.bad)
        try:
            jobs = Job.from_rows(res.names, res.rows)
        except Exception:  # noqa: BLE001 - find the row(s) that do not convert
            jobs = []
            at_id, at_lease = res.names.index("id"), res.names.index("run_lease")
            for row in res.rows:
                try:
                    jobs.append(Job.from_row(res.names, row))
                except Exception as exc:  # noqa: BLE001
                    bad.append(BadRow(row[at_id], row[at_lease], "row", f"{type(exc).__name__}: {exc}"[:500]))
        for row in bad:
            if row.id is not None and row.run_lease is not None:
                message = f"could not decode job {row.id} (column {row.column}): {row.error}"
                log.warning("claim: %s; the job is failed, the rest of its claim runs", message)
                yield from self.finish(row.id, row.run_lease, "fail", message, None)
        return jobs

    def complete(self, job_id: int, run_lease: int) -> Op:
        check_id(job_id), check_id(run_lease, "run_lease")
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
        check_id(job_id), check_id(run_lease, "run_lease")
        if progress is not None:
            check_json(progress, "progress")
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
        check_id(job_id), check_id(run_lease, "run_lease")
        res = yield Query(self.q("cancel_leased"), {"id": job_id, "lease": run_lease, "now": self.now()})
        return bool(res.rows)

    def finish(self, job_id: int, run_lease: int, mode: str, error: Any, delay: float | None) -> Op:
        """Lease-guarded fail / retry / snooze; returns the outcome word ('stale', ...)."""
        check_id(job_id), check_id(run_lease, "run_lease")
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
        delay = check_delay(after_seconds, "after_seconds")
        outcome = yield from self.finish(job_id, run_lease, "retry", error, delay)
        return outcome != "stale"

    def snooze(self, job_id: int, run_lease: int, delay_s: Any) -> Op:
        delay = check_delay(delay_s, "seconds")
        if delay is None:
            raise ValidationError("seconds must be a finite number of seconds, got None")
        outcome = yield from self.finish(job_id, run_lease, "snooze", None, delay)
        return outcome != "stale"

    # -- maintenance -------------------------------------------------------

    def promote_due(self, limit: int) -> Op:
        check_limit(limit)
        res = yield Query(self.q("promote_due"), {"now": self.now(), "limit": limit, "channel": self.channel})
        return int(res.rows[0][0])

    def rescue_expired(self, heartbeat_timeout: float, limit: int) -> Op:
        timeout = dt.timedelta(seconds=check_timeout(heartbeat_timeout, "heartbeat_timeout"))
        check_limit(limit)
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


def _new_job(batch: Batch, i: int, job_id: int, kind: str, queue: str, key: bytes | None, shard: int,
             lane_seq: int | None, state: JobState, run_at: dt.datetime, created_at: dt.datetime,
             concurrency_key: bytes | None) -> Job:
    """Row ``i`` of ``batch`` as the job just written: Job's fields in
    declaration order (:meth:`Job.from_values`), the rest as a new job has them."""
    return Job.from_values((
        job_id, kind, queue, loads(batch.args_text[i]), batch.priority, 0, batch.max_attempts, 0, state, key,
        shard, lane_seq, run_at, created_at, list(batch.tags), dict(batch.metadata), [],
        None, None, None, None, None, concurrency_key,
    ))
