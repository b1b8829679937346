"""Worker runtime: handlers by job kind, claim loops, heartbeats, maintenance.

The worker runs storage operations (:mod:`awa.storage`) through
:class:`~awa.worker.store.WorkerStore`; it never imports the clients, which
start it through :mod:`awa.worker.host`.
"""

from __future__ import annotations

from awa.worker.config import QueuePlan, RateLimit, RuntimePlan, plan_queues
from awa.worker.job import RunningJob
from awa.worker.host import ThreadedRuntime, runtime_options, start_runtime
from awa.worker.outcomes import Cancel, JobOutcome, RetryAfter, Snooze, TerminalError
from awa.worker.registry import derive_kind_from_name
from awa.worker.store import WorkerStore
from awa.worker.options import RuntimeOptions, connection_budget
from awa.worker.runtime import WorkerRuntime

__all__ = [
    "WorkerRuntime",
    "WorkerStore",
    "ThreadedRuntime",
    "start_runtime",
    "runtime_options",
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
