"""Client logic written once, without I/O.

Every operation is a generator that yields database operations (:class:`Query`
or :class:`Copy`) and receives their results. A tiny sync driver and a tiny
async driver run the same generators, so ``Client`` and ``AsyncClient`` share
every line of behaviour.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import pq
from psycopg.types.json import Jsonb

from awa.client import _batch
from awa.client.metrics import EnqueueMetrics
from awa.client.models import DlqEntry, Job, JobState, LaneStat, QueueStat
from awa.errors import AwaError, ValidationError
from awa.routing.hashes import shard_for_ordering_key
from awa.storage.queries import notify_channel, query, render

MAX_BACKOFF_SECONDS = 86_400.0
_SHARD_RETRIES = 8


@dataclass(slots=True)
class Query:
    sql: str
    params: dict[str, Any]


@dataclass(slots=True)
class Copy:
    sql: str
    data: str


@dataclass(slots=True)
class Result:
    names: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int


Op = Generator[Query | Copy, Result | None, Any]

_ROW_RESULTS = frozenset(
    getattr(pq.ExecStatus, name) for name in ("TUPLES_OK", "SINGLE_TUPLE", "TUPLES_CHUNK") if hasattr(pq.ExecStatus, name)
)


def result_names(cur: Any) -> list[str] | None:
    """The column names of a cursor's current result, or None when it has no
    rows to fetch (a command without RETURNING).

    Read from the result itself: ``cursor.description`` builds a Column object
    for every column on every access, which cost a claim statement (27
    columns) a quarter of a millisecond of the worker's time.
    """
    res = cur.pgresult
    if res is None or not (res.nfields or res.status in _ROW_RESULTS):  # as psycopg decides it
        return None
    encoding = cur.connection.info.encoding
    return [res.fname(i).decode(encoding) for i in range(res.nfields)]


def _jobs(res: Result) -> list[Job]:
    return [Job.from_row(res.names, r) for r in res.rows]


def _seconds(value: float | dt.timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if not _batch.is_finite_number(value):
        raise ValidationError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def _pairs(items: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    leases: list[int] = []
    for job_id, lease in items:
        ids.append(int(job_id))
        leases.append(int(lease))
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
    return _batch.array_literal(list(values))


class ClientCore:
    """State shared by one client: schema, clock, jitter, shard cache, rotor, metrics."""

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

    def _rotate(self, queue: str, shards: int) -> int:
        # Unkeyed rows of one (queue, priority) share one shard per batch; the
        # rotor moves on per batch so successive batches spread evenly.
        with self._lock:
            key = (queue, shards)
            n = self._rotor.get(key, 0)
            self._rotor[key] = n + 1
        return n % shards

    # -- enqueue -----------------------------------------------------------

    def enqueue(self, batch: _batch.Batch, want_jobs: bool) -> Op:
        if batch.n == 0:
            return [] if want_jobs else 0
        now = self.now()
        queues = batch.touched_queues()
        for _ in range(_SHARD_RETRIES):
            expected = [self._shards.get(q, 1) for q in queues]
            lanes = _batch.route(batch, dict(zip(queues, expected)), self._rotate)
            res = yield Query(
                self.q("enqueue_reserve"),
                {
                    "queues": text_array(queues),
                    "expected": int_array(expected),
                    "lane_queue": text_array([l.queue for l in lanes]),
                    "lane_priority": int_array([batch.priority] * len(lanes)),
                    "lane_shard": int_array([l.shard for l in lanes]),
                    "lane_count": int_array(_batch.lane_counts(lanes, batch.n)),
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
        columns, data = _batch.copy_buffer(batch, lanes, use_starts, db_now, scheduled, ids, now is not None)
        yield Copy(self.copy_sql(columns), data)

        counts: dict[str, int] = {}
        for lane, c in zip(lanes, _batch.lane_counts(lanes, batch.n)):
            counts[lane.queue] = counts.get(lane.queue, 0) + c
        self.metrics.record(counts)
        if not want_jobs:
            return batch.n
        return self._jobs_for(batch, lanes, use_starts, db_now, scheduled, ids)

    def insert_one(self, batch: _batch.Batch) -> Op:
        """One job, one statement (one round trip on an autocommit connection)."""
        now = self.now()
        queue = batch.queue
        kind = batch.kinds if isinstance(batch.kinds, str) else batch.kinds[0]
        for _ in range(_SHARD_RETRIES):
            expected = self._shards.get(queue, 1)
            [lane] = _batch.route(batch, {queue: expected}, self._rotate)
            res = yield Query(
                self.q("insert_job"),
                {
                    "queue": queue,
                    "expected": expected,
                    "priority": batch.priority,
                    "shard": lane.shard,
                    "kind": kind,
                    "args": batch.args_text[0],
                    "max_attempts": batch.max_attempts,
                    "tags": batch.tags or None,
                    "metadata": _batch.dumps(batch.metadata) if batch.metadata else None,
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

    def _jobs_for(self, batch, lanes, starts, now, scheduled, ids) -> list[Job]:
        out: list[Job | None] = [None] * batch.n
        state = JobState.SCHEDULED if scheduled else JobState.AVAILABLE
        pos = 0  # ids come in lane order
        run_at = batch.run_at or now
        keys = _batch.row_keys(batch)
        kinds = batch.kinds
        loads = _batch.loads
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
        queue_list = [_batch.check_name(q, "queue") for q in queues]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"limit must be a non-negative integer, got {limit!r}")
        if limits is not None:
            limits = list(limits)
            if len(limits) != len(queue_list):
                raise ValidationError(f"limits needs one entry per queue: {len(limits)} for {len(queue_list)} queues")
            for value in limits:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValidationError(f"each per-queue limit must be a non-negative integer, got {value!r}")
            if sum(limits) > limit:
                raise ValidationError(f"per-queue limits add up to {sum(limits)}, above limit {limit}")
        if deadline_ms is not None and (
            isinstance(deadline_ms, bool) or not isinstance(deadline_ms, int) or deadline_ms <= 0
        ):
            raise ValidationError(f"deadline_ms must be a positive integer, got {deadline_ms!r}")
        if aging_ms is not None and (isinstance(aging_ms, bool) or not isinstance(aging_ms, int) or aging_ms < 0):
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
        ids, leases = _pairs(items)
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
        ids, leases = _pairs(items)
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
                "error": _error_text(error),
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
        delay = _seconds(after_seconds, "after_seconds")
        outcome = yield from self.finish(job_id, run_lease, "retry", error, delay)
        return outcome != "stale"

    def snooze(self, job_id: int, run_lease: int, seconds: Any) -> Op:
        delay = _seconds(seconds, "seconds")
        if delay is None:
            raise ValidationError("seconds must be a finite number of seconds, got None")
        outcome = yield from self.finish(job_id, run_lease, "snooze", None, delay)
        return outcome != "stale"

    # -- maintenance -------------------------------------------------------

    def promote_due(self, limit: int) -> Op:
        res = yield Query(self.q("promote_due"), {"now": self.now(), "limit": limit, "channel": self.channel})
        return int(res.rows[0][0])

    def rescue_expired(self, heartbeat_timeout: float, limit: int) -> Op:
        timeout = dt.timedelta(seconds=_seconds(heartbeat_timeout, "heartbeat_timeout") or 0.0)
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

    # -- admin -------------------------------------------------------------

    def cancel_job(self, job_id: int) -> Op:
        res = yield Query(self.q("cancel_job"), {"id": job_id, "now": self.now()})
        jobs = _jobs(res)
        return jobs[0] if jobs else None

    def get_job(self, job_id: int) -> Op:
        res = yield Query(self.q("get_job"), {"id": job_id})
        jobs = _jobs(res)
        return jobs[0] if jobs else None

    def list_jobs(self, state: Any, kind: str | None, queue: str | None, limit: int) -> Op:
        if state is not None:
            try:
                state = JobState(str(state)).value
            except ValueError:
                raise ValidationError(f"unknown job state {state!r}") from None
        res = yield Query(self.q("list_jobs"), {"state": state, "kind": kind, "queue": queue, "limit": limit})
        return _jobs(res)

    def _upsert_queue(self, queue: str, **settings: Any) -> Op:
        _batch.check_name(queue, "queue")
        params = {"queue": queue, "paused": None, "shards": None, "dlq": None, **settings}
        res = yield Query(self.q("upsert_queue"), params)
        name, _paused, shards, _dlq = res.rows[0]
        self._shards[name] = shards
        return None

    def pause_queue(self, queue: str) -> Op:
        return (yield from self._upsert_queue(queue, paused=True))

    def resume_queue(self, queue: str) -> Op:
        return (yield from self._upsert_queue(queue, paused=False))

    def set_enqueue_shards(self, queue: str, shards: int) -> Op:
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 64:
            raise ValidationError(f"enqueue_shards must be between 1 and 64, got {shards!r}")
        return (yield from self._upsert_queue(queue, shards=shards))

    def set_queue_dlq(self, queue: str, enabled: bool) -> Op:
        return (yield from self._upsert_queue(queue, dlq=bool(enabled)))

    def queue_stats(self, queue: str | None) -> Op:
        now = self.now()
        res = yield Query(self.q("queue_stats"), {"queue": queue})
        lane_res = yield Query(self.q("lane_stats"), {"queue": queue, "now": now})
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
                )
            )
        return out

    # -- dead-letter queue -------------------------------------------------

    def list_dlq(self, queue: str | None, kind: str | None, limit: int) -> Op:
        res = yield Query(self.q("dlq_list"), {"queue": queue, "kind": kind, "limit": limit})
        return [DlqEntry.from_row(res.names, r) for r in res.rows]

    def get_dlq_job(self, job_id: int) -> Op:
        res = yield Query(self.q("dlq_get"), {"id": job_id})
        return DlqEntry.from_row(res.names, res.rows[0]) if res.rows else None

    def dlq_depth(self, queue: str | None) -> Op:
        res = yield Query(self.q("dlq_depth"), {"queue": queue})
        return int(res.rows[0][0])

    def purge_dlq_job(self, job_id: int) -> Op:
        res = yield Query(self.q("dlq_purge"), {"id": job_id})
        return bool(res.rows)

    def move_failed_to_dlq(self, job_id: int, reason: str) -> Op:
        res = yield Query(self.q("move_failed_to_dlq"), {"id": job_id, "reason": reason, "now": self.now()})
        return bool(res.rows[0][0])

    def retry_from_dlq(
        self, job_id: int, run_at: dt.datetime | None, priority: int | None, queue: str | None
    ) -> Op:
        run_at = _batch.check_run_at(run_at)
        if priority is not None:
            _batch.check_priority(priority)
        shard = None
        if queue is not None:
            _batch.check_name(queue, "queue")
            entry_res = yield Query(self.q("dlq_get"), {"id": job_id})
            if not entry_res.rows:
                return None
            entry = DlqEntry.from_row(entry_res.names, entry_res.rows[0])
            if queue != entry.job.queue:
                shard_res = yield Query(self.q("queue_shards"), {"queues": [queue]})
                shards = shard_res.rows[0][1] if shard_res.rows else 1
                key = entry.job.ordering_key
                shard = shard_for_ordering_key(key, shards) if key is not None else self._rotate(queue, shards) if shards > 1 else 0
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
        jobs = _jobs(res)
        return jobs[0] if jobs else None


def _expand_runs(starts: Sequence[int], lengths: Sequence[int]) -> list[int]:
    out: list[int] = []
    for first, n in zip(starts, lengths):
        out.extend(range(first, first + n))
    return out


def backoff_seconds(attempt: int, jitter: float) -> float:
    """The retry delay the database applies: ``min(2**attempt + jitter, 24 h)``."""
    return min(2.0**attempt + jitter, MAX_BACKOFF_SECONDS)
