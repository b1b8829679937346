"""The asyncio worker runtime: claim, run, finalize, heartbeat, wake, maintain.

One :class:`WorkerRuntime` serves one client in one process:

* per physical queue, ``claimers`` loops reserve slots first, then claim at
  most that many jobs in one statement (``claim_batch_size`` caps a batch);
* async handlers run as tasks on the loop, sync handlers on a bounded thread pool;
* completions are buffered and written with one ``complete_many`` per flush;
* one heartbeat loop writes every leased attempt with ``heartbeat_many``;
* ONE dedicated LISTEN connection wakes the claimers of any queue, polling
  every ``poll_interval_ms`` is the fallback (:mod:`awa.worker.wakeup`);
* every runtime competes for the maintenance lease row; the holder runs
  rescue and promotion (:mod:`awa.worker.maintenance`, ADR 0019).

Nothing here holds a pool connection while waiting for another one, so the
pool cannot deadlock; :func:`connection_budget` sizes it for full parallelism.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from awa.worker.capacity import HardSlots, OverflowPool, TokenBucket, WeightedSlots
from awa.worker.config import RuntimePlan
from awa.worker.attempts import log_failed_attempt, write_outcome
from awa.worker.job import RunningJob
from awa.worker.cron import CronScheduler
from awa.worker.maintenance import MaintenanceLeader
from awa.worker.metrics import WorkerMetrics
from awa.worker.options import RuntimeOptions, connection_budget
from awa.worker.outage import OutageFilter, OutageLog, is_connection_error
from awa.worker.partitions import WidthFollower, check_widths, per_partition_groups
from awa.worker.outcomes import TerminalError
from awa.worker.registry import Handler, Registry
from awa.worker.retention import Retention, RetentionSettings
from awa.worker.served import QueueStats, ServedQueue
from awa.worker.store import WorkerStore
from awa.worker.wakeup import Listener

log = logging.getLogger("awa.worker")

# After a full batch, a short claim is looked at again this many times, after
# 2, 4, 8, 16, 32 ms, before the queue counts as drained. (With one retry,
# two processes draining one queue left each other's claimers idle for a poll
# interval whenever their claims met: 10.2k against 12.3k jobs/s, round 3 in
# docs/benchmark-runs.tsv.)
BUSY_RETRIES = 5
BUSY_RETRY_FIRST_S = 0.002
# A failed claim or flush is retried after 50 ms, doubling up to this: low,
# so the first claim after an outage comes well within 2 s of the server.
RETRY_MAX_S = 0.5


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker loop %s stopped unexpectedly", task.get_name(), exc_info=task.exception())


class WorkerRuntime:
    def __init__(self, store: WorkerStore, registry: Registry, plan: RuntimePlan, options: RuntimeOptions) -> None:
        self.store = store
        self.registry = registry
        self.plan = plan
        self.options = options
        self.loop: asyncio.AbstractEventLoop
        self._queues: dict[str, ServedQueue] = {}  # by physical queue name
        self._claim_units: list[list[ServedQueue]] = []  # the queues of each configured entry
        self._tasks: list[asyncio.Task[Any]] = []
        self._claimers: list[asyncio.Task[Any]] = []
        self._executions: dict[int, tuple[RunningJob, asyncio.Task[Any]]] = {}
        self._leased: dict[int, RunningJob] = {}  # handler done or not, until its outcome is written
        self._finalizers: set[asyncio.Task[Any]] = set()
        self._completions: list[RunningJob] = []
        self._completions_ready = asyncio.Event()
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._abandoning = False
        self._finalizer_stop = False
        self._finalize_task: asyncio.Task[Any] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._threads: dict[int, Future[Any]] = {}  # job id -> its sync handler's call, while it runs
        # Sync handlers still running when shutdown's grace period ended (see shutdown()).
        self.abandoned: list[RunningJob] = []
        self.outage = OutageLog(log)  # connection errors: one line per outage (awa.worker.outage)
        self._outage_filter = OutageFilter(self.outage)
        self._listener = Listener(store, self._wake_queue, self._wake_all, self.outage)
        self.metrics = WorkerMetrics(store.core.metrics.meter)
        store.metrics = self.metrics  # rescues are counted where the store runs them
        overrides = [(name, q.retention) for q in plan.queues for name in q.physical_queues]
        self.retention = Retention(store, RetentionSettings.build(options, overrides), self.metrics)
        self._maintenance = MaintenanceLeader(store, options, self._wake_all, self.retention)
        self.heartbeat_alive = False
        self.width_mismatches: dict[str, int] = {}  # logical queue -> registered width, where it differs
        self.started = False
        self.stopped = False

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.options.validate()
        log.addFilter(self._outage_filter)
        self._build_queues()
        total_capacity = self.plan.global_max_workers or sum(plan.max_workers or 0 for plan in self.plan.queues)
        if any(not h.is_async for h in self.registry.handlers()):
            threads = self.options.sync_handler_threads or max(1, min(total_capacity, 64))
            self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="awa-worker")
        try:
            self.width_mismatches = await check_widths(self.store, self.plan)
        except Exception:  # the check only warns; it never keeps a worker from starting
            log.warning("could not check the partition registry", exc_info=True)
        # Connect LISTEN before the first claim: an insert after this point wakes us.
        await self._listener.connect()
        spawn = self._spawn
        self._tasks.append(spawn(self._listener.run(), name="awa-listen"))
        self._tasks.append(spawn(self._heartbeat_loop(), name="awa-heartbeat"))
        self._tasks.append(spawn(self._maintenance.run(), name="awa-maintenance"))
        follow = {u[0].plan.name: u for u in self._claim_units if u[0].plan.partitions is not None}
        if not self.plan.weighted:  # one entry per partition: new entries like partition 0's
            singles = [u[0].name for u in self._claim_units if u[0].plan.partitions is None]
            follow.update((logical, [self._queues[n] for n in names])
                          for logical, names in per_partition_groups(singles).items() if logical not in follow)
        if follow:  # width changes (ADR 0024): serve the partitions they add
            follower = WidthFollower(self.store, follow, self._add_partition)
            self._tasks.append(spawn(self._follow_widths(follower), name="awa-widths"))
        if self.registry.periodic:  # exactly-once comes from cron_fire, not from leadership
            cron = CronScheduler(self.store.core, self.store.executor.run, self.registry.periodic.values())
            self._tasks.append(spawn(cron.run(self._stop_event), name="awa-cron"))
        self._finalize_task = spawn(self._completion_loop(), name="awa-complete")
        for unit in self._claim_units:
            plan = unit[0].plan
            for index in range(plan.claimers):
                self._claimers.append(spawn(self._claim_loop(unit), name=f"awa-claim-{plan.name}-{index}"))
        self.started = True

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        return task

    def _build_queues(self) -> None:
        pool: OverflowPool | None = None
        if self.plan.weighted:
            assert self.plan.global_max_workers is not None
            overflow = self.plan.global_max_workers - sum(q.min_workers for q in self.plan.queues)
            pool = OverflowPool(overflow, {q.name: q.weight for q in self.plan.queues})
            pool.on_release = self._wake_all_for_capacity
        for plan in self.plan.queues:
            slots: HardSlots | WeightedSlots
            if pool is not None:
                slots = WeightedSlots(plan.name, plan.min_workers, pool)
            else:
                assert plan.max_workers is not None
                slots = HardSlots(plan.max_workers)
            bucket = TokenBucket(plan.rate_limit) if plan.rate_limit else None
            notified, capacity = asyncio.Event(), asyncio.Event()
            unit = [ServedQueue(name, plan, slots, bucket, notified, capacity) for name in plan.physical_queues]
            self._queues.update((queue.name, queue) for queue in unit)
            self._claim_units.append(unit)

    def _add_partition(self, unit: list[ServedQueue], name: str) -> None:
        first = unit[0]
        if first.plan.partitions is None:  # a new entry of its own, with partition 0's settings
            plan = replace(first.plan, name=name)
            assert plan.max_workers is not None  # followed only without weighted slots
            queue = ServedQueue(name, plan, HardSlots(plan.max_workers), TokenBucket(plan.rate_limit) if plan.rate_limit else None)
            self._claim_units.append([queue])
            self._claimers.extend(self._spawn(self._claim_loop(self._claim_units[-1]), name=f"awa-claim-{name}-{i}")
                                  for i in range(plan.claimers))
        else:
            queue = ServedQueue(name, first.plan, first.slots, first.bucket, first.notified, first.capacity)
        unit.append(queue)
        self._queues[name] = queue
        queue.notified.set()

    async def _follow_widths(self, follower: WidthFollower) -> None:
        while not self._stopping:
            with contextlib.suppress(Exception):  # the next poll tries again
                await follower.poll()
            await asyncio.sleep(max(self.options.poll_interval_ms, 1000) / 1000)

    def _wake_all_for_capacity(self) -> None:
        for queue in self._queues.values():
            queue.capacity.set()

    def _wake_queue(self, name: str) -> None:
        queue = self._queues.get(name)
        if queue is not None:
            queue.notified.set()

    def _wake_all(self) -> None:
        for queue in self._queues.values():
            queue.notified.set()

    @property
    def is_leader(self) -> bool:
        """Whether this runtime currently runs maintenance for its schema."""
        return self._maintenance.is_leader

    def running_sync_ids(self) -> set[int]:
        """Ids of the jobs whose synchronous handler is running in a thread now."""
        return {job_id for job_id, call in list(self._threads.items()) if not call.done()}

    @property
    def listener_alive(self) -> bool:
        return self._listener.alive

    async def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop claiming, let running handlers finish for ``timeout_ms`` (the
        grace period), then give the unfinished attempts back so another worker
        runs them.

        An async handler still running is cancelled, then its job released.
        A synchronous handler cannot be interrupted: its job is NOT released
        while its thread runs (it would run twice at once). It is listed in
        :attr:`abandoned`; when the handler returns, its job is completed
        (or released, if it raised) over a connection of its own. If the
        process exits first, heartbeats have stopped and heartbeat rescue
        makes the job retryable after ``heartbeat_staleness_ms``; ``awa work``
        releases it with a short delay just before exiting instead."""
        if self.stopped or not self.started:
            return
        deadline = self.loop.time() + max(0, timeout_ms) / 1000
        self._stopping = True
        self._stop_event.set()
        for queue in self._queues.values():
            queue.notified.set()
            queue.capacity.set()
        for job, _ in self._executions.values():
            job.mark_cancelled()
        # Claimers are never cancelled mid-claim: a claim that committed must be dispatched.
        await asyncio.gather(*self._claimers, return_exceptions=True)
        for job, _ in list(self._executions.values()):
            job.mark_cancelled()  # also those dispatched by the last claims
        running = [task for _, task in self._executions.values()]
        if running:
            _, pending = await asyncio.wait(running, timeout=max(0.0, deadline - self.loop.time()))
            if pending:
                self._abandoning = True
                abandoned = [job for job, task in self._executions.values() if task in pending]
                in_threads = {job.id: self._threads[job.id] for job in abandoned if job.id in self._threads}
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                to_release = []
                for job in abandoned:
                    call = in_threads.get(job.id)
                    if call is not None and not call.done():
                        self.abandoned.append(job)
                        call.add_done_callback(lambda f, job=job: self._settle_abandoned(job, f))
                    else:
                        to_release.append(job)
                if self.abandoned:
                    log.warning("%d synchronous handler(s) still running after the %g s grace period: their jobs "
                                "stay leased until they return (ids %s)", len(self.abandoned), timeout_ms / 1000,
                                ", ".join(str(j.id) for j in self.abandoned[:20]))
                await asyncio.gather(*(self._release(job) for job in to_release), return_exceptions=True)
        self._finalizer_stop = True
        self._completions_ready.set()
        if self._finalize_task is not None:
            await asyncio.gather(self._finalize_task, return_exceptions=True)
        if self._finalizers:
            await asyncio.gather(*list(self._finalizers), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._listener.close()
        await self._maintenance.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.heartbeat_alive = False
        log.removeFilter(self._outage_filter)
        self.stopped = True

    # -- claiming --------------------------------------------------------------
    async def _claim_loop(self, unit: list[ServedQueue]) -> None:
        """Claim for one configured entry: one physical queue, or every partition
        of a shared entry (one statement across them, capped by the shared slots)."""
        queue = unit[0]  # slots, bucket and events are the unit's (shared by its queues)
        plan = queue.plan
        target: str | list[str] = queue.name if len(unit) == 1 else sorted(q.name for q in unit)
        by_name = {q.name: q for q in unit}
        poll = self.options.poll_interval_ms / 1000
        looked_empty = False
        busy_retries = 0
        backoff = 0.05
        while not self._stopping:
            if len(unit) != len(by_name):  # a width change added partitions (WidthFollower)
                target, by_name = sorted(q.name for q in unit), {q.name: q for q in unit}
            if looked_empty:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.notified.wait(), poll)
                looked_empty = False
                continue
            # Let a few more slots free up rather than claiming one job per round trip.
            free = queue.slots.available()
            low_water = max(1, min(plan.claim_batch_size, queue.slots.limit // 4))
            if 0 < free < low_water and any(q.in_flight for q in unit):
                await asyncio.sleep(0.001)
            # Ask for what we could use, not just what is free: in weighted mode the
            # request is this queue's demand on the shared pool, even when it gets nothing.
            want = min(plan.claim_batch_size, queue.slots.limit - queue.slots.in_use)
            if queue.bucket is not None:
                tokens = queue.bucket.available()
                if tokens <= 0:
                    await asyncio.sleep(min(poll, max(0.001, queue.bucket.seconds_until_token())))
                    continue
                want = min(want, tokens)
            queue.capacity.clear()
            granted = queue.slots.try_acquire(want)
            if granted <= 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.capacity.wait(), poll)
                continue
            queue.notified.clear()  # a NOTIFY during the claim must trigger another one
            try:
                jobs = await self.store.claim(
                    target, granted, deadline_ms=plan.deadline_duration_ms, aging_ms=plan.priority_aging_interval_ms
                )
            except asyncio.CancelledError:
                queue.slots.release(granted)
                raise
            except Exception as exc:
                queue.slots.release(granted)
                self.outage.failed(f"claim from queue {plan.name!r}", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            backoff = 0.05
            self.outage.ok()
            if queue.bucket is not None:
                queue.bucket.consume(len(jobs))
            retry_in = 0.0
            if len(jobs) < granted:
                queue.slots.release(granted - len(jobs))
                if busy_retries > 0:
                    # Right after a full batch, a short claim more likely met lanes
                    # that another process was claiming (SKIP LOCKED) than a drained
                    # queue: look again soon, backing off, rather than leave these
                    # slots idle until a NOTIFY or the next poll.
                    retry_in = BUSY_RETRY_FIRST_S * 2 ** (BUSY_RETRIES - busy_retries)
                    busy_retries -= 1
                else:
                    looked_empty = True
                    if not jobs:
                        queue.slots.idle()
            else:
                busy_retries = BUSY_RETRIES
            if jobs:
                self.metrics.claimed_jobs(jobs)
            for raw in jobs:
                owner = by_name[raw.queue]
                owner.stats.claimed += 1
                self._dispatch(owner, raw)
            if retry_in:
                await self._pause(retry_in)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when shutdown begins."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def _dispatch(self, queue: ServedQueue, raw: Any) -> None:
        job = RunningJob(raw, None, self.flush_progress, self.loop)
        if self._stopping:
            job.mark_cancelled()
        queue.in_flight += 1
        if queue.in_flight > queue.stats.peak_in_flight:
            queue.stats.peak_in_flight = queue.in_flight
        self._leased[raw.id] = job
        task = self.loop.create_task(self._execute(queue, job))
        self._executions[raw.id] = (job, task)

    # -- running ---------------------------------------------------------------
    async def _execute(self, queue: ServedQueue, job: RunningJob) -> None:
        outcome: Any = None
        handler: Handler | None = self.registry.get(job.raw.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler registered for job kind '{job.raw.kind}' in this worker")
            try:
                job.args = handler.decode_args(job.raw.args)
            except Exception as exc:  # retrying cannot fix args that do not decode
                raise TerminalError(f"could not decode args for kind '{handler.kind}': {exc!r}") from exc
            started = self.loop.time()
            try:
                if handler.is_async:
                    outcome = await handler.func(job)
                else:
                    assert self._executor is not None
                    call = self._executor.submit(handler.func, job)
                    self._threads[job.id] = call
                    call.add_done_callback(lambda _f, job_id=job.id: self._threads.pop(job_id, None))
                    outcome = await asyncio.wrap_future(call)
                    if inspect.isawaitable(outcome):  # a plain callable that returned a coroutine
                        outcome = await outcome
            finally:
                self.metrics.ran(job.raw.queue, self.loop.time() - started)
        except asyncio.CancelledError:
            if self._abandoning:  # shutdown timed out; the lease is released by shutdown()
                self._executions.pop(job.id, None)
                self._leased.pop(job.id, None)
                self._free_slot(queue)
                raise
            outcome = RuntimeError("handler task was cancelled")
        except BaseException as exc:  # noqa: BLE001 - every handler failure becomes an outcome
            outcome = exc
        self._executions.pop(job.id, None)
        self._free_slot(queue)
        if outcome is None or not isinstance(outcome, BaseException):
            self._completions.append(job)
            if len(self._completions) >= self.options.completion_batch_size or len(self._completions) == 1:
                self._completions_ready.set()
            return
        task = self.loop.create_task(self._finish(job, outcome))
        self._finalizers.add(task)
        task.add_done_callback(self._finalizers.discard)

    def _settle_abandoned(self, job: RunningJob, call: Future[Any]) -> None:
        """In the thread of an abandoned sync handler, once it returned:
        complete its job, or release it (lease-guarded, so a rescue that
        came first wins)."""
        ok = not call.cancelled() and call.exception() is None and not isinstance(call.result(), BaseException)
        try:
            self.store.settle_sync(job.raw.id, job.raw.run_lease, ok)
        except Exception as exc:  # noqa: BLE001 - rescue recovers it; say so once
            log.warning("could not settle abandoned job %s (%s); heartbeat rescue will recover it", job.raw.id, exc)

    def _free_slot(self, queue: ServedQueue) -> None:
        queue.in_flight -= 1
        queue.slots.release(1)
        queue.capacity.set()

    async def _finish(self, job: RunningJob, outcome: BaseException) -> None:
        raw = job.raw
        try:
            # Connection errors: retried (the job stays leased and heartbeated)
            # until the database is back, or 3 times once shutting down.
            # Other errors: 5 tries; then heartbeat rescue runs the job again.
            tries = 0
            delay = 0.05
            while True:
                try:
                    applied = await self._apply_outcome(job, outcome)
                    self.outage.ok()
                    if not applied:
                        log.info("job %s attempt %s lost its lease before its outcome was written", raw.id, raw.attempt)
                    return
                except Exception as exc:
                    tries += 1
                    self.outage.failed(f"writing the outcome of job {raw.id} (try {tries})", exc)
                    if (self._finalizer_stop and tries >= 3) or (not is_connection_error(exc) and tries >= 5):
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self._leased.pop(raw.id, None)

    async def _apply_outcome(self, job: RunningJob, outcome: BaseException) -> bool:
        return await write_outcome(self.store, job.raw, outcome, self._failed_attempt)

    def _failed_attempt(self, raw: Any, word: str, outcome: BaseException, delay: float | None) -> bool:
        """Count and log one failed attempt (once: its outcome was written)."""
        if word == "stale":
            return False
        stats = self._queues[raw.queue].stats if raw.queue in self._queues else QueueStats()
        log_failed_attempt(stats, self.metrics, raw, word, outcome, delay)
        return True

    async def _release(self, job: RunningJob) -> None:
        try:
            await self.store.release(job.raw.id, job.raw.run_lease)
        except Exception as exc:
            self.outage.failed(f"releasing job {job.raw.id} (heartbeat rescue will recover it)", exc)

    # -- completion batching ---------------------------------------------------
    async def _completion_loop(self) -> None:
        flush_delay = self.options.completion_flush_ms / 1000
        backoff = 0.05
        failures = 0
        while True:
            await self._completions_ready.wait()
            if not self._finalizer_stop and len(self._completions) < self.options.completion_batch_size:
                await asyncio.sleep(flush_delay)  # gather a batch
            self._completions_ready.clear()
            batch, self._completions = self._completions, []
            if batch:
                try:
                    flags = await self.store.complete_many([(j.raw.id, j.raw.run_lease) for j in batch])
                except Exception as exc:
                    failures += 1
                    if self._finalizer_stop and failures >= 3:
                        # Shutting down and the database will not take them: the
                        # attempts stay running and heartbeat rescue re-runs them.
                        log.exception("giving up on %d completions at shutdown", len(batch) + len(self._completions))
                        for job in batch + self._completions:
                            self._leased.pop(job.raw.id, None)
                        self._completions = []
                        return
                    self.outage.failed(f"complete_many of {len(batch)} job(s)", exc)
                    self._completions[:0] = batch
                    self._completions_ready.set()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_MAX_S)
                    continue
                backoff = 0.05
                failures = 0
                self.outage.ok()
                done: dict[str, int] = {}
                for job, ok in zip(batch, flags):
                    self._leased.pop(job.raw.id, None)
                    if ok:
                        done[job.raw.queue] = done.get(job.raw.queue, 0) + 1
                    stats = self._queues[job.raw.queue].stats if job.raw.queue in self._queues else None
                    if stats is not None:
                        if ok:
                            stats.completed += 1
                        else:
                            stats.stale += 1
                for queue, n in done.items():
                    self.metrics.completed(queue, n)
            if self._completions:
                self._completions_ready.set()
            elif self._finalizer_stop:
                return

    # -- heartbeats ------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.options.heartbeat_interval_ms / 1000
        self.heartbeat_alive = True
        while True:
            await asyncio.sleep(interval)
            try:
                await self._heartbeat_once()
                self.heartbeat_alive = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.heartbeat_alive = False
                self.outage.failed("heartbeat", exc)

    async def _heartbeat_once(self) -> None:
        jobs = list(self._leased.values())
        if not jobs:
            return
        with_progress = [j for j in jobs if j.progress_pending]
        plain = [j for j in jobs if not j.progress_pending]
        for job in with_progress:
            await self.flush_progress(job)
        for start in range(0, len(plain), 500):
            chunk = plain[start : start + 500]
            flags = await self.store.heartbeat_many([(j.raw.id, j.raw.run_lease) for j in chunk])
            for job, alive in zip(chunk, flags):
                if not alive:
                    job.mark_cancelled()  # lease lost: admin cancel, rescue or already finalized

    async def flush_progress(self, job: RunningJob) -> bool:
        alive = await self.store.heartbeat(job.raw.id, job.raw.run_lease, job.take_progress())
        if not alive:
            job.mark_cancelled()
        return alive

    # -- introspection ---------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "running": self.started and not self.stopped,
            "shutting_down": self._stopping,
            "leader": self.is_leader,
            "listener_alive": self.listener_alive,
            "heartbeat_alive": self.heartbeat_alive,
            "queues": {
                name: {
                    "in_flight": q.in_flight,
                    "capacity": q.slots.limit,  # shared by a shared entry's partitions
                    "slots_of": q.plan.name,
                    "claimed": q.stats.claimed,
                    "completed": q.stats.completed,
                    "stale_completions": q.stats.stale,
                    "peak_in_flight": q.stats.peak_in_flight,
                    "failed_attempts": q.stats.failed_attempts,
                    "retrying": q.stats.retrying,
                    "failed": q.stats.failed,
                }
                for name, q in self._queues.items()
            },
        }
