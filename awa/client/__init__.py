"""Sync and async clients over one shared, I/O-free implementation."""

from awa.client._core import backoff_seconds
from awa.client.aio import AsyncClient
from awa.client.metrics import QueueEnqueueCounts
from awa.client.models import DlqEntry, Job, JobState, LaneStat, QueueStat
from awa.client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "DlqEntry",
    "Job",
    "JobState",
    "LaneStat",
    "QueueEnqueueCounts",
    "QueueStat",
    "backoff_seconds",
]
