"""awa: partitioned queues on a PostgreSQL job queue.

The public surface is re-exported here. Each block below belongs to one layer;
keep imports in layer order (routing -> storage -> clients -> worker).
"""

from __future__ import annotations

from awa.errors import AwaError, DatabaseUnavailable, MigrationError, ValidationError

# --- routing (pure functions) ---
# The verification-only correlated scheme stays in awa.routing on purpose.
from awa.routing import (
    AWA_COMPAT,
    XXH3,
    PartitionedQueue,
    RoutedOpts,
    RoutingScheme,
    ordering_key_hash64,
    ordering_key_hashes64,
    partition_for_ordering_key,
    partition_hash64,
    partition_hashes64,
    partitions_for_ordering_keys,
    shard_for_ordering_key,
    shards_for_ordering_keys,
)
# --- storage / clients ---
from awa.client import (
    AsyncClient,
    Client,
    DlqEntry,
    Job,
    JobState,
    LaneStat,
    QueueEnqueueCounts,
    QueueStat,
)
# --- worker runtime ---
from awa.worker import (
    AsyncWorkerMixin,
    Cancel,
    JobOutcome,
    RetryAfter,
    RunningJob,
    Snooze,
    TerminalError,
    WorkerMixin,
)

__version__ = "0.1.0"
