"""``task`` / ``start`` / ``shutdown``: the worker API of the clients.

The clients own handler registration and the runtime's lifetime; the worker
package (:mod:`awa.worker.host`) runs the runtime on the client's storage
core and connections. The worker never sees the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from awa.errors import AwaError, ValidationError
from awa.worker.host import QueueConfigs, ThreadedRuntime, plan_for, runtime_options, start_runtime
from awa.worker.registry import Registry
from awa.worker.runtime import WorkerRuntime


# start() options of awa-pg that name parts of awa's own storage engine or
# features this package does not have; refused with a message that says so
# (docs/awa-pg-compatibility.md).
AWA_PG_STORAGE_OPTIONS = (
    "queue_storage_schema",
    "queue_storage_queue_slot_count",
    "queue_storage_lease_slot_count",
    "queue_storage_claim_slot_count",
    "queue_storage_queue_stripe_count",
    "queue_storage_queue_rotate_interval_ms",
    "queue_storage_lease_rotate_interval_ms",
    "queue_storage_claim_rotate_interval_ms",
    "storage_transition_role",
)
AWA_PG_FEATURE_OPTIONS = {
    "callback_rescue_interval_ms": "external callbacks",
    "descriptor_retention_days": "queue and job-kind descriptors",
}


def refuse_awa_pg_only_options(options: dict[str, Any]) -> None:
    """Raise for awa-pg start() options with no meaning here."""
    storage = [k for k in AWA_PG_STORAGE_OPTIONS if k in options]
    if storage:
        raise ValidationError(
            f"start() option(s) {', '.join(storage)} configure awa-pg's queue-storage engine, "
            "which this package does not have (its storage is the plain jobs table); remove them"
        )
    for name, feature in AWA_PG_FEATURE_OPTIONS.items():
        if name in options:
            raise ValidationError(
                f"start() option {name} is awa-pg's setting for {feature}, which this package does not have; remove it"
            )


class _TaskMixin:
    _core: Any
    _executor: Any
    _worker_registry: Registry | None = None
    _worker_runtime: WorkerRuntime | None = None

    def _registry(self) -> Registry:
        if self._worker_registry is None:
            self._worker_registry = Registry()
        return self._worker_registry

    def task(
        self, args_type: type | str, *, kind: str | None = None, queue: str = "default"
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the handler for a job kind.

        ``@client.task(SendEmail, queue="email")`` derives the kind from the
        class (``send_email``) and decodes ``job.args`` into ``SendEmail``;
        ``@client.task("send_email", queue="email")`` hands over the stored dict.
        Async handlers run on the event loop, sync ones on a thread pool.
        """
        return self._registry().decorator(args_type, kind=kind, queue=queue)

    def handler_for(self, kind: str) -> Any:
        """The registered handler of ``kind`` (an :class:`awa.worker.registry.Handler`), or None."""
        return self._registry().get(kind)

    @property
    def worker_runtime(self) -> WorkerRuntime | None:
        return self._worker_runtime

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
        ``rescue_interval_ms``, ``promote_interval_ms``, ``leader_election_interval_ms``, ``leader_lease_ms``,
        ``completion_batch_size``, ``completion_flush_ms``, ``sync_handler_threads``;
        retention (awa-pg's names, :mod:`awa.worker.retention`): ``completed_retention_hours``,
        ``failed_retention_hours``, ``dlq_retention_hours``, ``cleanup_batch_size``,
        ``cleanup_interval_ms``, ``terminal_count_rollup_interval_ms``, and per queue
        ``{"retention": {"completed_hours": h, "failed_hours": h}}`` in a dict config.
        """
        current = self.worker_runtime
        if current is not None and not current.stopped:
            raise AwaError("the worker runtime is already running; call shutdown() first")
        refuse_awa_pg_only_options(options)
        plan = plan_for(self._registry(), queues, global_max_workers)
        opts = runtime_options({"poll_interval_ms": poll_interval_ms, **options})
        self._worker_runtime = await start_runtime(self._core, self._executor, self._registry(), plan, opts)

    async def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop claiming; running jobs get ``timeout_ms`` to finish, then their
        attempts are released so another worker runs them. Safe to call twice."""
        runtime = self.worker_runtime
        if runtime is not None:
            await runtime.shutdown(timeout_ms)


class WorkerMixin(_TaskMixin):
    """The same runtime for the sync ``Client``, on a private background loop."""

    _worker_thread: ThreadedRuntime | None = None

    def start(
        self,
        queues: QueueConfigs = None,
        *,
        global_max_workers: int | None = None,
        poll_interval_ms: int = 200,
        **options: Any,
    ) -> None:
        if self._worker_thread is not None:
            raise AwaError("the worker runtime is already running; call shutdown() first")
        refuse_awa_pg_only_options(options)
        plan = plan_for(self._registry(), queues, global_max_workers)
        opts = runtime_options({"poll_interval_ms": poll_interval_ms, **options})
        conninfo, kwargs = self._executor.connect_args()
        thread = ThreadedRuntime(self._core, conninfo, kwargs, self._registry(), plan, opts)
        self._worker_runtime = thread.start()
        self._worker_thread = thread

    def shutdown(self, timeout_ms: int = 2000) -> None:
        thread, self._worker_thread = self._worker_thread, None
        if thread is not None:
            thread.stop(timeout_ms)
