"""awa: partitioned queues on a PostgreSQL job queue.

The public surface is re-exported here. Each block below belongs to one layer;
keep imports in layer order (routing -> storage -> worker -> clients).
"""

from __future__ import annotations

from awa.errors import AwaError, DatabaseUnavailable, MigrationError, UniqueConflict, ValidationError

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
# --- storage ---
from awa.storage.metrics import QueueEnqueueCounts
from awa.storage.models import DlqEntry, Job, JobState, LaneStat, QueueStat
# --- worker runtime ---
from awa.worker import Cancel, JobOutcome, RetryAfter, RunningJob, Snooze, TerminalError
# --- clients ---
from awa.client import AsyncClient, AsyncWorkerMixin, Client, WorkerMixin

# --- awa-pg's names (docs/awa-pg-compatibility.md) ---
from awa.errors import DatabaseError, SchemaNotMigrated, SerializationError, UnknownJobKind
from awa.client import HealthCheck, QueueHealth, RetryFailedResult, SyncTransaction, Transaction
from awa.storage.validate import derive_kind
from awa.client.functions import current_migration_version, migrate, migrations, migrations_range

from awa.version import __version__
