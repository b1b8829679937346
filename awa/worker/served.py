"""The physical queues a worker runtime serves, and their counters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from awa.worker.capacity import HardSlots, TokenBucket, WeightedSlots
from awa.worker.config import QueuePlan


@dataclass
class QueueStats:
    claimed: int = 0
    completed: int = 0
    stale: int = 0
    peak_in_flight: int = 0
    failed_attempts: int = 0  # attempts that ended in an error (each logged once)
    retrying: int = 0  # ... of which the job runs again
    failed: int = 0  # ... of which the job failed for good (failed or dead-lettered)


@dataclass
class ServedQueue:
    """One physical queue. The partitions of a shared entry (``partitions`` in
    its config, ADR 0014) hold the same slots, bucket and events: one claim
    loop serves them all."""

    name: str
    plan: QueuePlan
    slots: HardSlots | WeightedSlots
    bucket: TokenBucket | None
    notified: asyncio.Event = field(default_factory=asyncio.Event)
    capacity: asyncio.Event = field(default_factory=asyncio.Event)
    stats: QueueStats = field(default_factory=QueueStats)
    in_flight: int = 0
