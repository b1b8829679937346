"""Routing core: portable ordering-key hashes and ``PartitionedQueue``.

Pure Python, no database.  The awa-compatible functions here are a
cross-language contract (see docs/adr/0002-routing-hash-contract.md): the same
key bytes give the same shard and partition in every producer, including the
SQL twins in ``awa/storage/sql/migrations/0001_baseline/01_routing.sql``.
"""

from __future__ import annotations

from awa.routing.hashes import (
    HAVE_NUMPY,
    KEY_TYPE_ERROR,
    coerce_key,
    from_signed64,
    ordering_key_hash64,
    ordering_key_hashes64,
    partition_for_ordering_key,
    partition_hash64,
    partition_hashes64,
    partitions_for_ordering_keys,
    shard_for_ordering_key,
    shards_for_ordering_keys,
    to_signed64,
)
from awa.routing.partitioned_queue import MAX_PHYSICAL_QUEUES, PartitionedQueue
from awa.routing.routed_opts import RoutedOpts
from awa.routing.schemes import (
    AWA_COMPAT,
    CORRELATED_VERIFICATION_ONLY,
    DEFAULT_SCHEME,
    ROUTING_SCHEMES,
    XXH3,
    XXH3_PARTITION_SEED,
    XXH3_SHARD_SEED,
    RoutingScheme,
    routing_scheme,
)

__all__ = [
    "PartitionedQueue",
    "MAX_PHYSICAL_QUEUES",
    "RoutedOpts",
    "RoutingScheme",
    "AWA_COMPAT",
    "XXH3",
    "CORRELATED_VERIFICATION_ONLY",
    "DEFAULT_SCHEME",
    "ROUTING_SCHEMES",
    "XXH3_SHARD_SEED",
    "XXH3_PARTITION_SEED",
    "routing_scheme",
    "HAVE_NUMPY",
    "KEY_TYPE_ERROR",
    "coerce_key",
    "ordering_key_hash64",
    "shard_for_ordering_key",
    "partition_hash64",
    "partition_for_ordering_key",
    "ordering_key_hashes64",
    "shards_for_ordering_keys",
    "partition_hashes64",
    "partitions_for_ordering_keys",
    "to_signed64",
    "from_signed64",
]
