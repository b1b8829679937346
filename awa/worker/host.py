"""Starting and stopping a worker runtime, on the caller's event loop or on a thread.

There is a single runtime (asyncio). A sync client runs it on a private event
loop in a background thread (:class:`ThreadedRuntime`) instead of keeping a
second implementation. The clients' ``start`` / ``shutdown`` call these.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from awa.errors import ValidationError
from awa.storage.core import StorageCore
from awa.storage.drivers import AsyncExecutor, run_async
from awa.worker.config import RuntimePlan, plan_queues
from awa.worker.registry import Registry
from awa.worker.options import RuntimeOptions, connection_budget
from awa.worker.runtime import WorkerRuntime
from awa.worker.store import WorkerStore

QueueConfigs = Sequence[tuple[str, int] | dict[str, Any]] | None

# awa's names for the two rescue scans; here one rescue call covers both.
_RESCUE_ALIASES = ("heartbeat_rescue_interval_ms", "deadline_rescue_interval_ms")


def plan_for(registry: Registry, queues: QueueConfigs, global_max_workers: int | None) -> RuntimePlan:
    """The runtime plan of ``queues`` for the handlers registered so far."""
    if not len(registry):
        raise ValidationError("register at least one worker before starting the runtime (@client.task(...))")
    return plan_queues(queues, global_max_workers=global_max_workers, declared_queues=registry.declared_queues())


def runtime_options(options: dict[str, Any]) -> RuntimeOptions:
    """``start()``'s keyword options as :class:`RuntimeOptions` (unknown names refused)."""
    kwargs = dict(options)
    aliases = [kwargs.pop(k) for k in _RESCUE_ALIASES if k in kwargs]
    aliases = [v for v in aliases if v is not None]
    if aliases and kwargs.get("rescue_interval_ms") is None:
        kwargs["rescue_interval_ms"] = min(aliases)
    unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(RuntimeOptions)})
    if unknown:
        raise ValidationError(f"start() got unknown option(s): {', '.join(unknown)}")
    result = RuntimeOptions(**kwargs)
    result.validate()
    return result


async def start_runtime(
    core: StorageCore, executor: AsyncExecutor, registry: Registry, plan: RuntimePlan, options: RuntimeOptions
) -> WorkerRuntime:
    """Size the pool for ``plan``, then start a runtime on the running loop.

    The runtime never holds one pool connection while waiting for another, so
    even a small pool cannot deadlock, but a too-small pool serialises
    claimers behind each other: a pool the executor owns grows to the budget,
    a caller's pool that is too small is refused.
    """
    if not core.schema_verified:  # SchemaNotMigrated now, not from every loop later
        await check_schema(core, executor)
    needed = connection_budget(plan, options.max_connections)
    await executor.ensure_size(needed, "claim statements + completion flusher + heartbeats + maintenance")
    runtime = WorkerRuntime(WorkerStore(core, executor), registry, plan, options)
    try:
        await runtime.start()
    except BaseException:
        runtime.started = True
        await runtime.shutdown(0)
        raise
    return runtime


async def check_schema(core: StorageCore, executor: AsyncExecutor) -> None:
    """:meth:`~awa.storage.schema_check.SchemaCheckOps.require_migrated` on a
    connection of its own (an unreachable server fails at once, not after
    the pool's timeout)."""
    conn = await executor.connect()
    try:
        await run_async(conn, core.require_migrated())
    finally:
        await conn.close()


class ThreadedRuntime:
    """A runtime on a private event loop thread, with its own async pool on
    the database the sync client uses (``conninfo`` and ``kwargs``)."""

    def __init__(
        self,
        core: StorageCore,
        conninfo: str,
        kwargs: dict[str, Any],
        registry: Registry,
        plan: RuntimePlan,
        options: RuntimeOptions,
    ) -> None:
        self.core = core
        self.conninfo = conninfo
        self.kwargs = kwargs
        self.registry = registry
        self.plan = plan
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="awa-worker-loop", daemon=True)
        self.runtime: WorkerRuntime | None = None
        self.executor: AsyncExecutor | None = None

    def start(self) -> WorkerRuntime:
        self.thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()
        except BaseException:
            self._stop_loop()
            raise
        assert self.runtime is not None
        return self.runtime

    async def _start(self) -> None:
        self.executor = AsyncExecutor(
            self.conninfo, name="awa-worker", min_size=1, max_size=connection_budget(self.plan, self.options.max_connections), kwargs=self.kwargs,
            schema=self.core.schema,
        )
        try:
            self.runtime = await start_runtime(self.core, self.executor, self.registry, self.plan, self.options)
        except BaseException:
            await self.executor.close()
            raise

    async def _stop(self, timeout_ms: int) -> None:
        try:
            if self.runtime is not None:
                await self.runtime.shutdown(timeout_ms)
        finally:
            if self.executor is not None:
                await self.executor.close()

    def stop(self, timeout_ms: int) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(timeout_ms), self.loop).result()
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
