"""``awa.testing``: run job handlers inline in an application's own tests (awa-pg's names).

:class:`AwaTestClient` wraps a real :class:`~awa.AsyncClient` (or a sync
:class:`~awa.Client`) on a test database. Its methods are coroutines, as in
awa-pg::

    tc = AwaTestClient(awa.AsyncClient(url))
    await tc.migrate(); await tc.clean()
    await tc.insert(SendEmail(to="a@example.com", subject="Hi"))
    result = await tc.work_one(SendEmail, handler=send_email)
    assert result.is_completed()

``work_one`` claims the next job of the queue through the real claim (lane
order, after promoting due scheduled and retryable jobs), runs the handler
in the test's event loop (a sync handler on a thread, as the worker runs
it) and writes its outcome with the same lease-guarded calls as the worker
runtime: complete, retry (with backoff or ``RetryAfter``), ``Snooze``,
``Cancel``, ``TerminalError``. Without a handler it runs the one registered
with ``@client.task`` for the job's kind. ``drain`` works a queue until it
has no due job; ``enqueued`` and ``assert_enqueued`` look at what the code
under test enqueued.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

from awa.errors import AwaError, UnknownJobKind
from awa.storage.models import Job
from awa.storage.ops import error_text
from awa.storage.queries import quoted_schema
from awa.storage.validate import derive_kind
from awa.worker.job import RunningJob
from awa.worker.outcomes import Cancel, RetryAfter, Snooze, TerminalError
from awa.worker.registry import Registry

# Every table ``clean`` empties (not the migration ledger).
CLEANED_TABLES = (
    "jobs", "dlq_entries", "queues", "enqueue_heads", "claim_heads", "lane_segments", "lane_pending", "terminal_counts",
    "key_parked", "queue_partitions", "partition_epochs", "partition_marks",
    "lane_fences",
)

JobRow = Job
"""awa-pg's name for the job a :class:`WorkResult` carries (here the real :class:`~awa.Job`)."""


class _NoJob:
    def __repr__(self) -> str:
        return "NoJob"

    def __bool__(self) -> bool:
        return False


NoJob = _NoJob()
"""``WorkResult.job`` when there was no job to run."""


@dataclass
class WorkResult:
    """One job run by :meth:`AwaTestClient.work_one`.

    ``job``: the job as stored after its outcome (a dead-lettered job as it
    was moved), or :data:`NoJob`. ``outcome``: ``completed``, ``retryable``,
    ``failed``, ``cancelled``, ``snoozed`` or ``no_job``. ``error``: the
    handler's exception text, or the ``Cancel`` reason.
    """

    job: Job | _NoJob
    outcome: str
    error: str | None = None

    def is_completed(self) -> bool:
        return self.outcome == "completed"

    def is_failed(self) -> bool:
        return self.outcome == "failed"

    def is_retryable(self) -> bool:
        return self.outcome == "retryable"

    def is_cancelled(self) -> bool:
        return self.outcome == "cancelled"

    def is_snoozed(self) -> bool:
        return self.outcome == "snoozed"

    def is_no_job(self) -> bool:
        return self.outcome == "no_job"


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class AwaTestClient:
    """Helpers for tests, over a real client (see the module docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client

    async def insert(self, args: Any, **opts: Any) -> Job:
        """``client.insert(args, **opts)``."""
        return await _value(self._client.insert(args, **opts))

    async def migrate(self) -> None:
        await _value(self._client.migrate())

    async def clean(self) -> None:
        """Delete every job, dead-letter entry, queue setting, lane, key grant and
        width change (for test isolation); schedules and key policies stay."""
        schema = quoted_schema(self._client.schema)
        tables = ", ".join(f"{schema}.{name}" for name in CLEANED_TABLES)
        tx = await _value(self._client.transaction())
        await _value(tx.execute(f"TRUNCATE {tables}"))
        await _value(tx.commit())

    # -- running jobs ------------------------------------------------------

    async def work_one(
        self,
        args_type: type | None = None,
        handler: Any = None,
        *,
        kind: str | None = None,
        queue: str = "default",
    ) -> WorkResult:
        """Claim the next due job of ``queue`` and run ``handler`` (default: the
        handler registered for its kind). With ``args_type`` or ``kind`` the job
        must be of that kind: one of another kind is put back unchanged
        (without using an attempt) and the result is ``no_job``."""
        want = kind or (derive_kind(args_type.__name__) if args_type is not None else None)
        client = self._client
        await _value(client.promote_due())
        claimed = await _value(client.claim(queue, 1))
        if not claimed:
            return WorkResult(NoJob, "no_job")
        raw = claimed[0]
        if want is not None and raw.kind != want:
            await _value(client.snooze(raw.id, raw.run_lease, 0))
            return WorkResult(NoJob, "no_job")
        found = self._handler(raw.kind, args_type, handler)
        if found is None:
            await _value(client.snooze(raw.id, raw.run_lease, 0))
            raise UnknownJobKind(f"unknown job kind: {raw.kind}")
        return await self._run(found, raw)

    async def drain(self, queue: str = "default", *, limit: int = 1000) -> list[WorkResult]:
        """Run every due job of ``queue`` with its registered handler, until none
        is left (at most ``limit``); the results in order."""
        results = []
        for _ in range(limit):
            result = await self.work_one(queue=queue)
            if result.is_no_job():
                break
            results.append(result)
        return results

    def _handler(self, job_kind: str, args_type: type | None, handler: Any) -> Any:
        if handler is None:
            return self._client.handler_for(job_kind)
        registry = Registry()
        registry.decorator(args_type if args_type is not None else job_kind, kind=job_kind)(handler)
        return registry.get(job_kind)

    async def _run(self, handler: Any, raw: Job) -> WorkResult:
        client = self._client
        loop = asyncio.get_running_loop()

        async def flush(job: RunningJob) -> bool:
            return bool(await _value(client.heartbeat(raw.id, raw.run_lease, job.take_progress())))

        job = RunningJob(raw, None, flush, loop)
        outcome: Any = None
        try:
            try:
                job.args = handler.decode_args(raw.args)
            except Exception as exc:  # noqa: BLE001 - as the worker: args that do not decode fail the job
                raise TerminalError(f"could not decode args for kind '{handler.kind}': {exc!r}") from exc
            if handler.is_async:
                outcome = await handler.func(job)
            else:
                outcome = await loop.run_in_executor(None, handler.func, job)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
        except Exception as exc:  # noqa: BLE001 - every handler failure is an outcome
            outcome = exc
        return await self._finish(raw, outcome)

    async def _finish(self, raw: Job, outcome: Any) -> WorkResult:
        client = self._client
        lease = (raw.id, raw.run_lease)
        if outcome is None or not isinstance(outcome, BaseException):
            await _value(client.complete(*lease))
            return WorkResult(await self._stored(raw.id), "completed")
        if isinstance(outcome, Snooze):
            await _value(client.snooze(*lease, outcome.seconds))
            return WorkResult(await self._stored(raw.id), "snoozed")
        if isinstance(outcome, Cancel):
            await _value(client.cancel(*lease))
            return WorkResult(await self._stored(raw.id), "cancelled", outcome.reason)
        if isinstance(outcome, TerminalError):
            await _value(client.fail(*lease, error_text(outcome)))
            return WorkResult(await self._stored(raw.id), "failed", str(outcome))
        if isinstance(outcome, RetryAfter):
            await _value(client.retry(*lease, outcome.seconds, outcome.error or f"retry requested after {outcome.seconds}s"))
            message = outcome.error
        else:
            await _value(client.retry(*lease, None, error_text(outcome)))
            message = str(outcome)
        stored = await self._stored(raw.id)
        return WorkResult(stored, "retryable" if stored.state == "retryable" else "failed", message)

    async def _stored(self, job_id: int) -> Job:
        job = await _value(self._client.find_job(job_id))
        if job is None:  # moved to the dead-letter queue
            entry = await _value(self._client.get_dlq_job(job_id))
            if entry is None:
                raise AwaError(f"job not found: {job_id}")
            job = entry.job
        return job

    # -- what the code under test enqueued ---------------------------------

    async def enqueued(
        self, *, kind: str | None = None, queue: str | None = None, state: Any = None, limit: int = 1000
    ) -> list[Job]:
        """Jobs stored now, oldest first (filters as :meth:`Client.list_jobs`)."""
        jobs = await _value(self._client.list_jobs(state=state, kind=kind, queue=queue, limit=limit))
        return list(reversed(jobs))

    async def assert_enqueued(
        self,
        kind: str | type,
        *,
        queue: str | None = None,
        args: dict[str, Any] | None = None,
        count: int | None = None,
    ) -> list[Job]:
        """Assert that jobs of ``kind`` (a kind or an args class) are stored,
        with ``args`` a subset of their args, ``count`` of them when given;
        returns them. Raises ``AssertionError`` with what was found."""
        name = kind if isinstance(kind, str) else derive_kind(kind.__name__)
        jobs = await self.enqueued(kind=name, queue=queue)
        if args is not None:
            jobs = [j for j in jobs if isinstance(j.args, dict) and all(j.args.get(k) == v for k, v in args.items())]
        where = f"kind {name!r}" + (f" in queue {queue!r}" if queue else "") + (f" with args {args}" if args else "")
        if count is None and not jobs:
            raise AssertionError(f"no job of {where} was enqueued")
        if count is not None and len(jobs) != count:
            raise AssertionError(f"expected {count} job(s) of {where}, found {len(jobs)}")
        return jobs

    async def assert_not_enqueued(self, kind: str | type, *, queue: str | None = None) -> None:
        name = kind if isinstance(kind, str) else derive_kind(kind.__name__)
        jobs = await self.enqueued(kind=name, queue=queue)
        if jobs:
            raise AssertionError(f"expected no job of kind {name!r}, found {len(jobs)} (ids {[j.id for j in jobs]})")


__all__ = ["AwaTestClient", "JobRow", "NoJob", "WorkResult"]
