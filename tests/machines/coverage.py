"""Partition x shard coverage (spec ``PartitionShardCoverage``) over a key probe.

The spec quantifies over every key hash; here the quantifier runs over a
deterministic probe of keys large enough that a correct router reaches every
(partition, shard) cell with overwhelming probability (20 keys per cell on
average: a cell stays empty with probability about e**-20). Results are cached
because routing is a pure function of (scheme, partitions, shard widths).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from awa.routing.hashes import base_hashes_array

KEYS_PER_CELL = 20
MAX_PROBE = 1 << 21

PartitionsOf = Callable[[np.ndarray, int], np.ndarray]


@lru_cache(maxsize=8)
def probe_hashes(count: int) -> np.ndarray:
    return base_hashes_array([f"probe-{i}" for i in range(count)])


def missing_cells(
    partitions_of: PartitionsOf, partitions: int, shards_per_partition: Sequence[int]
) -> dict[int, list[int]]:
    """For each partition, the shards no probe key reaches (empty dict = covered).

    ``partitions_of(base_hashes, partitions)`` is the router under test, given the
    base hashes of the probe keys; the shard is the base hash modulo the width of
    the partition's physical queue (ADR-025).
    """
    widest = max(shards_per_partition)
    count = min(MAX_PROBE, max(256, KEYS_PER_CELL * partitions * widest))
    hashes = probe_hashes(1 << (count - 1).bit_length())  # few distinct sizes to cache
    chosen = np.asarray(partitions_of(hashes, partitions), dtype=np.int64)
    widths = np.asarray(shards_per_partition, dtype=np.int64)
    shard = (hashes % widths[chosen].astype(np.uint64)).astype(np.int64)
    reached = np.zeros((partitions, widest), dtype=bool)
    reached[chosen, shard] = True
    missing: dict[int, list[int]] = {}
    for p in range(partitions):
        lacking = np.flatnonzero(~reached[p, : shards_per_partition[p]]).tolist()
        if lacking:
            missing[p] = lacking
    return missing
