"""The public method set, defined once for both clients.

Each method validates its input, builds an operation generator from
:class:`~awa.storage.core.StorageCore` and hands it to the client's executor
(:mod:`awa.storage.drivers`). The sync executor runs it and returns the
result; the async executor's ``run`` is a coroutine function, so the same
methods return awaitables.

``conn=``: run inside the caller's own psycopg connection/transaction
(transactional enqueue). Nothing is committed by the client when the caller's
connection is in manual-commit mode; the caller commits or rolls back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from awa.client.dlq import DlqAPI
from awa.client.keys import KeyPolicyAPI
from awa.client.periodic import PeriodicAPI
from awa.storage.batch import prepare
from awa.storage.core import StorageCore
from awa.storage.keys import check_concurrency_key, split_concurrency_keys
from awa.storage.metrics import QueueEnqueueCounts
from awa.storage.ops import Op
from awa.storage.unique import guarded

DEFAULT_PROMOTE_LIMIT = 1000
DEFAULT_RESCUE_LIMIT = 1000
DEFAULT_HEARTBEAT_TIMEOUT = 90.0


class ClientAPI(KeyPolicyAPI, PeriodicAPI, DlqAPI):
    _core: StorageCore
    _executor: Any  # SyncExecutor or AsyncExecutor

    def _drive(self, op: Op, conn: Any = None, tx: bool = True, checked: bool = True, writes: str | None = None) -> Any:
        """Run ``op`` on the executor. ``tx=False``: the operation is one
        statement (atomic on its own), so an autocommit connection runs it
        without BEGIN/COMMIT. ``checked``: until the schema check passed once,
        it runs first (:mod:`awa.storage.schema_check`). ``writes``: what it
        enqueues, named in :class:`~awa.errors.CommitUnknown` (ADR 0038)."""
        if checked and not self._core.schema_verified:
            op = self._core.checked(op)
        return self._executor.run(op, conn, tx, writes)

    def _own_transaction(self, conn: Any) -> bool:
        """Whether a one-statement operation on ``conn`` (None: the client's
        own) is a transaction of its own: a pooled connection, or an idle
        autocommit one. Only then may the single insert mark its queue for
        the fast statement, whose queue-row lock ends with it (ADR 0040)."""
        target = conn if conn is not None else self._executor.conn
        if target is None:
            return self._executor.pool is not None
        if not isinstance(target, (psycopg.Connection, psycopg.AsyncConnection)):
            return False  # the executor refuses it with a ValidationError
        return target.autocommit and target.info.transaction_status == pq.TransactionStatus.IDLE

    # -- introspection -----------------------------------------------------

    @property
    def core(self) -> StorageCore:
        """The storage operations this client runs (for extensions and tests)."""
        return self._core

    @property
    def executor(self) -> Any:
        """Where this client runs operations: its pool or connection
        (:class:`~awa.storage.drivers.SyncExecutor` / ``AsyncExecutor``)."""
        return self._executor

    @property
    def schema(self) -> str:
        return self._core.schema

    @property
    def notify_channel(self) -> str:
        """The schema's single wake-up channel (LISTEN once per process)."""
        return self._core.channel

    def enqueue_metrics(self) -> dict[str, QueueEnqueueCounts]:
        """Jobs and batches enqueued by this client, per physical queue."""
        return self._core.metrics.snapshot()

    # -- enqueue -----------------------------------------------------------

    def insert(
        self,
        args: Any,
        *,
        kind: str | None = None,
        queue: str = "default",
        priority: int = 2,
        max_attempts: int = 25,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_at: dt.datetime | None = None,
        ordering_key: bytes | str | None = None,
        conn: Any = None,
        concurrency_key: bytes | str | None = None,
        unique_opts: dict[str, Any] | None = None,
    ) -> Any:
        """Enqueue one job; returns its :class:`Job`. ``concurrency_key``: the
        key a key policy of the queue limits (ADR 0020). ``unique_opts`` (awa's:
        ``by_queue``, ``by_args``, ``by_period``, ``states``): refuse it with
        :class:`~awa.errors.UniqueConflict` while a job with its key holds one
        of those states."""
        batch = prepare(
            [args], kind=kind, queue=queue, priority=priority, max_attempts=max_attempts, tags=tags,
            metadata=metadata, run_at=run_at, ordering_key=ordering_key, opts=None, unique_opts=unique_opts,
        )
        op = self._core.insert_one(batch, check_concurrency_key(concurrency_key), self._own_transaction(conn))
        if batch.unique is None:  # no unique key written: no conflict to translate
            return self._drive(op, conn, False, True, "the insert")
        return guarded(self._drive, op, conn, True, True, "the insert")

    def insert_many_copy(
        self,
        jobs: Sequence[Any],
        *,
        kind: str | None = None,
        queue: str = "default",
        priority: int = 2,
        max_attempts: int = 25,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_at: dt.datetime | None = None,
        ordering_key: bytes | str | None = None,
        opts: Sequence[dict[str, Any] | None] | None = None,
        conn: Any = None,
        concurrency_key: bytes | str | None = None,
        unique_opts: dict[str, Any] | None = None,
    ) -> Any:
        """COPY a batch atomically; returns the jobs in input order.

        ``opts[i]`` may route job ``i`` to another ``queue`` and/or give it an
        ``ordering_key`` (absent: batch default; ``None``: no key) and a
        ``concurrency_key`` (ADR 0020).
        """
        return self._copy(True, jobs, conn, concurrency_key, opts, kind=kind, queue=queue, priority=priority,
                          max_attempts=max_attempts, tags=tags, metadata=metadata, run_at=run_at,
                          ordering_key=ordering_key, unique_opts=unique_opts)

    def enqueue_many_copy(
        self,
        jobs: Sequence[Any],
        *,
        kind: str | None = None,
        queue: str = "default",
        priority: int = 2,
        max_attempts: int = 25,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_at: dt.datetime | None = None,
        ordering_key: bytes | str | None = None,
        opts: Sequence[dict[str, Any] | None] | None = None,
        conn: Any = None,
        concurrency_key: bytes | str | None = None,
        unique_opts: dict[str, Any] | None = None,
    ) -> Any:
        """Like :meth:`insert_many_copy` but returns only the count (cheaper)."""
        return self._copy(False, jobs, conn, concurrency_key, opts, kind=kind, queue=queue, priority=priority,
                          max_attempts=max_attempts, tags=tags, metadata=metadata, run_at=run_at,
                          ordering_key=ordering_key, unique_opts=unique_opts)

    def _copy(self, want_jobs: bool, jobs: Sequence[Any], conn: Any, concurrency_key: bytes | str | None,
              opts: Sequence[dict[str, Any] | None] | None, **fields: Any) -> Any:
        """One COPY batch: the jobs back (``want_jobs``) or only their count."""
        opts, ckeys = split_concurrency_keys(opts, len(jobs) if isinstance(jobs, Sequence) else 0, concurrency_key)
        batch = prepare(jobs, opts=opts, **fields)
        return guarded(self._drive, self._core.enqueue(batch, want_jobs, ckeys), conn, True, True, "the batch")

    # -- claims and leases -------------------------------------------------

    def claim(
        self,
        queues: Sequence[str] | str,
        limit: int,
        *,
        deadline_ms: int | None = None,
        priority_aging_interval_ms: int | None = None,
        limits: Sequence[int] | None = None,
    ) -> Any:
        """Claim due jobs: highest priority first, lane order within a lane.

        ``priority_aging_interval_ms``: a lane whose next job has waited k
        intervals competes one level higher per interval (never above 1).
        ``limits``: one cap per queue (their sum at most ``limit``), claimed in
        one round trip -- how a worker serves many partitions cheaply.
        """
        return self._drive(
            self._core.claim(queues, limit, deadline_ms, priority_aging_interval_ms, limits), tx=False
        )

    def complete(self, job_id: int, run_lease: int) -> Any:
        """True when applied; False when the lease is stale (nothing changed)."""
        return self._drive(self._core.complete(job_id, run_lease), tx=False)

    def complete_many(self, items: Iterable[tuple[int, int]]) -> Any:
        """Complete (job_id, run_lease) pairs; a list of bools in input order."""
        return self._drive(self._core.complete_many(items), tx=False)

    def fail(self, job_id: int, run_lease: int, error: Any = None) -> Any:
        return self._drive(self._core.fail(job_id, run_lease, error), tx=False)

    def retry(self, job_id: int, run_lease: int, after_seconds: float | None = None, error: Any = None) -> Any:
        """Retry later (backoff when ``after_seconds`` is None); fails when out of attempts."""
        return self._drive(self._core.retry(job_id, run_lease, after_seconds, error), tx=False)

    def snooze(self, job_id: int, run_lease: int, seconds: float) -> Any:
        """Run again after ``seconds`` without using up an attempt."""
        return self._drive(self._core.snooze(job_id, run_lease, seconds), tx=False)

    def cancel(self, job_id: int, run_lease: int) -> Any:
        return self._drive(self._core.cancel(job_id, run_lease), tx=False)

    def heartbeat(self, job_id: int, run_lease: int, progress: Any = None) -> Any:
        return self._drive(self._core.heartbeat(job_id, run_lease, progress), tx=False)

    def heartbeat_many(self, items: Iterable[tuple[int, int]]) -> Any:
        return self._drive(self._core.heartbeat_many(items), tx=False)

    # -- maintenance -------------------------------------------------------

    def promote_due(self, *, limit: int = DEFAULT_PROMOTE_LIMIT) -> Any:
        """Make due scheduled/retryable jobs available (new lane numbers); returns the count."""
        return self._drive(self._core.promote_due(limit), tx=False)

    def rescue_expired(
        self, *, heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT, limit: int = DEFAULT_RESCUE_LIMIT
    ) -> Any:
        """Running jobs with a stale heartbeat or a passed deadline -> retryable (or failed).

        Returns ``[(job_id, run_lease, outcome), ...]``.
        """
        return self._drive(self._core.rescue_expired(heartbeat_timeout, limit), tx=False)

    # -- admin -------------------------------------------------------------

    def cancel_job(self, job_id: int) -> Any:
        """Cancel a non-terminal job without a lease; the Job, or None."""
        return self._drive(self._core.cancel_job(job_id), tx=False)

    def get_job(self, job_id: int) -> Any:
        return self._drive(self._core.get_job(job_id), tx=False)

    def list_jobs(
        self,
        *,
        state: Any = None,
        kind: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Any:
        """Jobs newest first (id descending); ``cursor``: a ``next_cursor`` of
        :meth:`list_jobs_page`, to go on below it."""
        return self._drive(self._core.list_jobs(state, kind, queue, limit, cursor), tx=False)

    def list_jobs_page(
        self,
        *,
        state: Any = None,
        kind: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Any:
        """One keyset page: a :class:`~awa.storage.joblist.JobPage` (``jobs``,
        ``next_cursor``; pass the cursor back for the next page, None at the end)."""
        return self._drive(self._core.list_jobs_page(state, kind, queue, limit, cursor), tx=False)

    def retry_job(self, job_id: int, *, run_at: dt.datetime | None = None) -> Any:
        """Put a failed or cancelled job back (attempts reset, due now or at
        ``run_at``); the Job, or None when it is not failed or cancelled."""
        return guarded(self._drive, self._core.retry_job(job_id, run_at), None, False)

    # -- retention ---------------------------------------------------------

    def prune_jobs(
        self,
        *,
        completed_retention_hours: float = 24.0,
        failed_retention_hours: float = 72.0,
        queue_retention: dict[str, dict[str, float]] | None = None,
        limit: int = 1000,
    ) -> Any:
        """One retention batch (what the maintenance leader runs): delete at
        most ``limit`` completed jobs older than ``completed_retention_hours``
        and failed or cancelled ones older than ``failed_retention_hours``
        (``queue_retention``: ``{queue: {"completed_hours": h, "failed_hours": h}}``
        per queue). Returns the number deleted."""
        from awa.storage.housekeeping import RetentionPolicy, check_hours

        default = RetentionPolicy(
            check_hours(completed_retention_hours, "completed_retention_hours") * 3600,
            check_hours(failed_retention_hours, "failed_retention_hours") * 3600,
        )
        per_queue = {}
        for name, policy in (queue_retention or {}).items():
            per_queue[name] = RetentionPolicy(
                check_hours(policy.get("completed_hours", completed_retention_hours), "retention completed_hours")
                * 3600,
                check_hours(policy.get("failed_hours", failed_retention_hours), "retention failed_hours") * 3600,
            )
        return self._drive(_total(self._core.prune_terminal(default, per_queue, limit)), tx=False)

    def prune_dlq(self, *, retention_hours: float = 720.0, limit: int = 1000) -> Any:
        """Delete at most ``limit`` dead-letter entries older than ``retention_hours``; the count."""
        from awa.storage.housekeeping import check_hours

        seconds = check_hours(retention_hours, "dlq_retention_hours") * 3600
        return self._drive(self._core.prune_dlq(seconds, limit), tx=False)

    def rollup_terminal_counts(self, *, lag_seconds: float = 2.0) -> Any:
        """Fold finished jobs into the stored terminal counts (keeps
        ``queue_stats`` cheap); returns the rows newly counted."""
        return self._drive(self._core.rollup_terminal_counts(lag_seconds), tx=False)

    # -- partition registry ------------------------------------------------

    def partitioned_queue(self, logical_queue: str, partitions: int | None = None, *, scheme: Any = None) -> Any:
        """A :class:`~awa.routing.PartitionedQueue` checked against the registry:
        the first user records the width, another width raises
        :class:`~awa.errors.PartitionCountMismatch`; ``partitions=None`` takes
        the registered width."""
        from awa.routing.schemes import DEFAULT_SCHEME

        op = self._core.partitioned_queue(logical_queue, partitions, DEFAULT_SCHEME if scheme is None else scheme)
        return self._drive(op, tx=False)

    def register_partitions(self, logical_queue: str, partitions: int) -> Any:
        """Record the width unless one is; returns the registered width."""
        return self._drive(_first(self._core.register_partitions(logical_queue, partitions)), tx=False)

    def set_queue_partitions(self, logical_queue: str, partitions: int) -> Any:
        """Record the width, replacing any; returns the width recorded before (or None)."""
        return self._drive(self._core.set_partitions(logical_queue, partitions), tx=False)

    def queue_partitions(self, logical_queue: str | None = None) -> Any:
        """``{logical queue: registered width}`` (one queue, or all)."""
        return self._drive(self._core.get_partitions(logical_queue), tx=False)

    def repartition(
        self, logical_queue: str, new_width: int, *, lock_timeout_ms: int = 2000, attempts: int = 3
    ) -> Any:
        """Change the width of a registered logical queue while producers and
        workers run, keeping per-key order (ADR 0024). Returns
        ``{"logical_queue", "epoch", "old_width", "new_width", "changed"}``.
        :class:`~awa.errors.ValidationError` with nothing changed for a width
        outside 1..32767, an unregistered queue, or a queue key held past
        ``lock_timeout_ms`` on each of ``attempts`` tries (another change
        being made, or a producer transaction left open). A change made while
        an earlier one still drains is allowed: its fences stack."""
        return self._drive(self._core.repartition(logical_queue, new_width, lock_timeout_ms, attempts), tx=True)

    def repartition_status(self, logical_queue: str) -> Any:
        """``{"logical_queue", "width", "epoch", "in_progress", "changes"}``;
        each change has ``epoch, old_width, new_width, started_at,
        finished_at`` (None while it drains), ``fences`` and ``fences_up``."""
        return self._drive(self._core.repartition_status(logical_queue), tx=False)

    def lift_fences(self, logical_queue: str | None = None) -> Any:
        """Run the lift step now (the maintenance leader runs it
        periodically); returns the number of fences lifted."""
        return self._drive(self._core.lift_fences(logical_queue), tx=False)

    def queue_stats(self, queue: str | None = None) -> Any:
        return self._drive(self._core.queue_stats(queue), tx=False)

    def pause_queue(self, queue: str, paused_by: str | None = None, *, create: bool = False) -> Any:
        """Stop handing out jobs of ``queue``. An unknown queue (never enqueued
        to, not a partition of a registered logical queue) raises
        ValidationError, unless ``create=True`` creates it paused.
        ``paused_by`` (awa-pg's) is accepted and not stored."""
        return self._drive(self._core.pause_queue(queue, create))

    def resume_queue(self, queue: str, *, create: bool = False) -> Any:
        """Hand out jobs of ``queue`` again; unknown queues as in :meth:`pause_queue`."""
        return self._drive(self._core.resume_queue(queue, create))

    def queue_exists(self, queue: str) -> Any:
        """Whether ``queue`` was ever enqueued to or configured, or is a
        partition within its logical queue's registered width."""
        return self._drive(self._core.queue_exists(queue), tx=False)

    def set_enqueue_shards(self, queue: str, shards: int) -> Any:
        return self._drive(self._core.set_enqueue_shards(queue, shards), tx=False)

    def set_queue_dlq(self, queue: str, enabled: bool = True) -> Any:
        return self._drive(self._core.set_queue_dlq(queue, enabled), tx=False)

    # -- unique jobs -------------------------------------------------------

    def cancel_by_unique_key(
        self, kind: str, *, queue: str | None = None, args: Any = None, period_bucket: int | None = None
    ) -> Any:
        """Cancel the job holding the key these parts make (as awa: give
        ``queue``/``args``/``period_bucket`` exactly when the insert's
        unique_opts used them); the cancelled Job, or None."""
        return self._drive(self._core.cancel_by_unique_key(kind, queue, args, period_bucket), tx=False)


def _total(op: Op) -> Op:
    rows = yield from op
    return sum(n for _q, _s, n in rows)


def _first(op: Op) -> Op:
    value = yield from op
    return value[0]
