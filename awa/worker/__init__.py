"""Worker runtime: handlers by job kind, claim loops, heartbeats, maintenance.

The client classes get ``task`` / ``start`` / ``shutdown`` from
:class:`AsyncWorkerMixin` and :class:`WorkerMixin`.
"""

from __future__ import annotations

from awa.worker.config import QueuePlan, RateLimit, RuntimePlan, plan_queues
from awa.worker.job import RunningJob
from awa.worker.mixin import AsyncWorkerMixin, WorkerMixin
from awa.worker.outcomes import Cancel, JobOutcome, RetryAfter, Snooze, TerminalError
from awa.worker.registry import derive_kind_from_name
from awa.worker.runtime import RuntimeOptions, WorkerRuntime, connection_budget

__all__ = [
    "AsyncWorkerMixin",
    "WorkerMixin",
    "WorkerRuntime",
    "RuntimeOptions",
    "RunningJob",
    "JobOutcome",
    "RetryAfter",
    "Snooze",
    "Cancel",
    "TerminalError",
    "QueuePlan",
    "RateLimit",
    "RuntimePlan",
    "plan_queues",
    "connection_budget",
    "derive_kind_from_name",
]
