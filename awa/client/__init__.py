"""Sync and async clients over one shared, I/O-free implementation (:mod:`awa.storage`)."""

from awa.client.aio import AsyncClient
from awa.client.sync import Client
from awa.client.worker_api import AsyncWorkerMixin, WorkerMixin
from awa.storage.core import backoff_seconds
from awa.storage.metrics import QueueEnqueueCounts
from awa.storage.models import DlqEntry, Job, JobState, LaneStat, QueueStat

__all__ = [
    "AsyncClient",
    "AsyncWorkerMixin",
    "Client",
    "DlqEntry",
    "Job",
    "JobState",
    "LaneStat",
    "QueueEnqueueCounts",
    "QueueStat",
    "WorkerMixin",
    "backoff_seconds",
]

# awa-pg's transaction and admin types (docs/awa-pg-compatibility.md)
from awa.client.compat import HealthCheck, QueueHealth, RetryFailedResult
from awa.client.transaction import SyncTransaction, Transaction

__all__ += ["HealthCheck", "QueueHealth", "RetryFailedResult", "SyncTransaction", "Transaction"]
