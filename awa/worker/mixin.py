"""``task`` / ``start`` / ``shutdown`` for the client classes.

The storage layer owns ``Client`` and ``AsyncClient``; they gain the worker
API by inheriting :class:`WorkerMixin` / :class:`AsyncWorkerMixin`. There is a
single runtime (asyncio): the sync client runs it on a private event loop in a
background thread instead of keeping a second implementation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

from awa.errors import AwaError, ValidationError
from awa.worker.config import RuntimePlan, plan_queues
from awa.worker.registry import Registry
from awa.worker.runtime import RuntimeOptions, WorkerRuntime, connection_budget
from awa.worker.store import StoreAdapter

QueueConfigs = Sequence[tuple[str, int] | dict[str, Any]] | None


def _registry(client: Any) -> Registry:
    registry = client.__dict__.get("_worker_registry")
    if registry is None:
        registry = Registry()
        client.__dict__["_worker_registry"] = registry
    return registry


def _plan(client: Any, queues: QueueConfigs, global_max_workers: int | None) -> RuntimePlan:
    registry = _registry(client)
    if not len(registry):
        raise ValidationError("register at least one worker before starting the runtime (@client.task(...))")
    return plan_queues(queues, global_max_workers=global_max_workers, declared_queues=registry.declared_queues())


def _options(kwargs: dict[str, Any]) -> RuntimeOptions:
    # awa's names for the two rescue scans; here one rescue call covers both.
    aliases = [kwargs.pop(k) for k in ("heartbeat_rescue_interval_ms", "deadline_rescue_interval_ms") if k in kwargs]
    aliases = [v for v in aliases if v is not None]
    if aliases and kwargs.get("rescue_interval_ms") is None:
        kwargs["rescue_interval_ms"] = min(aliases)
    unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(RuntimeOptions)})
    if unknown:
        raise ValidationError(f"start() got unknown option(s): {', '.join(unknown)}")
    options = RuntimeOptions(**kwargs)
    options.validate()
    return options


async def _ensure_pool_budget(store: StoreAdapter, plan: RuntimePlan) -> None:
    """Grow a pool the client owns to the runtime's budget; refuse a caller's pool that is too small.

    The runtime never holds one pool connection while waiting for another, so
    even a small pool cannot deadlock, but a too-small pool serialises claimers
    behind each other. A caller-supplied pool is left alone and must be big enough.
    """
    store.connect_args()  # a single-connection client cannot host a worker: say so now
    pool = store.pool
    needed = connection_budget(plan)
    max_size = getattr(pool, "max_size", None)
    if max_size is None or max_size >= needed:
        return
    if store.owns_pool:
        opener = getattr(store.client, "_ensure_open", None)  # an async pool can only resize once open
        if opener is not None:
            opened = opener()
            if asyncio.iscoroutine(opened):
                await opened
        result = pool.resize(min_size=min(getattr(pool, "min_size", 1), needed), max_size=needed)
        if asyncio.iscoroutine(result):
            await result
        return
    raise ValidationError(
        f"connection pool max_size={max_size} is too small for this worker: it needs {needed} "
        f"({plan.total_claimers} claimer(s) + completion flusher + heartbeats + maintenance); "
        "pass a larger pool or configure fewer claimers"
    )


class _TaskMixin:
    def task(
        self, args_type: type | str, *, kind: str | None = None, queue: str = "default"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the handler for a job kind.

        ``@client.task(SendEmail, queue="email")`` derives the kind from the
        class (``send_email``) and decodes ``job.args`` into ``SendEmail``;
        ``@client.task("send_email", queue="email")`` hands over the stored dict.
        Async handlers run on the event loop, sync ones on a thread pool.
        """
        return _registry(self).decorator(args_type, kind=kind, queue=queue)

    @property
    def worker_runtime(self) -> WorkerRuntime | None:
        return self.__dict__.get("_worker_runtime")

    def worker_health(self) -> dict[str, Any] | None:
        runtime = self.worker_runtime
        return None if runtime is None else runtime.health()


class AsyncWorkerMixin(_TaskMixin):
    async def start(
        self,
        queues: QueueConfigs = None,
        *,
        global_max_workers: int | None = None,
        poll_interval_ms: int = 200,
        **options: Any,
    ) -> None:
        """Start claiming and running jobs from ``queues`` in the background.

        ``queues`` holds ``(name, max_workers)`` tuples or dicts (see the
        worker ADR); ``PartitionedQueue.queue_configs(...)`` output fits as is.
        Extra keyword options: ``heartbeat_interval_ms``, ``heartbeat_staleness_ms``,
        ``rescue_interval_ms``, ``promote_interval_ms``, ``leader_election_interval_ms``,
        ``completion_batch_size``, ``completion_flush_ms``, ``sync_handler_threads``.
        """
        current = self.worker_runtime
        if current is not None and not current.stopped:
            raise AwaError("the worker runtime is already running; call shutdown() first")
        plan = _plan(self, queues, global_max_workers)
        opts = _options({"poll_interval_ms": poll_interval_ms, **options})
        store = StoreAdapter(self)
        await _ensure_pool_budget(store, plan)
        runtime = WorkerRuntime(store, _registry(self), plan, opts)
        try:
            await runtime.start()
        except BaseException:
            runtime.started = True
            await runtime.shutdown(0)
            raise
        self.__dict__["_worker_runtime"] = runtime

    async def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop claiming; running jobs get ``timeout_ms`` to finish, then their
        attempts are released so another worker runs them. Safe to call twice."""
        runtime = self.worker_runtime
        if runtime is not None:
            await runtime.shutdown(timeout_ms)


class WorkerMixin(_TaskMixin):
    """The same runtime for the sync ``Client``, on a private background loop."""

    def start(
        self,
        queues: QueueConfigs = None,
        *,
        global_max_workers: int | None = None,
        poll_interval_ms: int = 200,
        **options: Any,
    ) -> None:
        current = self.__dict__.get("_worker_thread")
        if current is not None:
            raise AwaError("the worker runtime is already running; call shutdown() first")
        plan = _plan(self, queues, global_max_workers)
        opts = _options({"poll_interval_ms": poll_interval_ms, **options})
        thread = _LoopThread(self, plan, opts)
        thread.start_runtime()
        self.__dict__["_worker_thread"] = thread
        self.__dict__["_worker_runtime"] = thread.runtime

    def shutdown(self, timeout_ms: int = 2000) -> None:
        thread = self.__dict__.pop("_worker_thread", None)
        if thread is not None:
            thread.stop_runtime(timeout_ms)


class _LoopThread:
    def __init__(self, client: Any, plan: RuntimePlan, options: RuntimeOptions) -> None:
        self.client = client
        self.plan = plan
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="awa-worker-loop", daemon=True)
        self.runtime: WorkerRuntime | None = None
        self.async_client: Any = None
        self.pool: Any = None

    def start_runtime(self) -> None:
        self.thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()
        except BaseException:
            self._stop_loop()
            raise

    async def _start(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        from awa.client import AsyncClient  # the storage layer's async client

        sync_store = StoreAdapter(self.client)
        conninfo, kwargs = sync_store.connect_args()
        # The loop thread gets its own async pool on the same database, sized to the budget.
        self.pool = AsyncConnectionPool(
            conninfo, kwargs=kwargs or None, min_size=1, max_size=connection_budget(self.plan),
            open=False, name="awa-worker",
        )
        await self.pool.open()
        core = self.client._core
        self.async_client = AsyncClient(self.pool, schema=sync_store.schema, clock=core.clock, jitter=core.jitter)
        runtime = WorkerRuntime(StoreAdapter(self.async_client), _registry(self.client), self.plan, self.options)
        try:
            await runtime.start()
        except BaseException:
            runtime.started = True
            await runtime.shutdown(0)
            await self._close_client()
            raise
        self.runtime = runtime

    async def _stop(self, timeout_ms: int) -> None:
        try:
            if self.runtime is not None:
                await self.runtime.shutdown(timeout_ms)
        finally:
            await self._close_client()

    async def _close_client(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def stop_runtime(self, timeout_ms: int) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(timeout_ms), self.loop).result()
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
