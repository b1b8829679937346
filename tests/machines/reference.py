"""An independent oracle for the routing spec, written from the spec, not from awa/routing.

The state machines compare database rows with THIS code, so a bug shared by the
client and the SQL routing (both written by the routing layer) still shows up.
Constants are awa's published routing facts (ADR-025 base hash, ADR-031
partition domain); the code is ours.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
BASE_OFFSET = 14695981039346656037
BASE_PRIME = 1099511628211
PARTITION_DOMAIN = 0x9D4D1B2F53A70C91


def key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def base_hash(key: bytes | str) -> int:
    """Spec ``BaseHash``: multiply-then-add over the key bytes, modulo 2**64."""
    value = BASE_OFFSET
    for byte in key_bytes(key):
        value = (value * BASE_PRIME + byte) & MASK64
    return value


def shard_of(key: bytes | str, shards: int) -> int:
    """Spec ``ShardOf``: the enqueue shard inside one physical queue."""
    return 0 if shards <= 1 else base_hash(key) % shards


def _finalize(value: int) -> int:
    # SplitMix64 finaliser: folds high bits into the low bits the modulo keeps.
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & MASK64
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def partition_of(key: bytes | str, partitions: int) -> int:
    """Spec ``PartitionOf``: domain-separated from the shard hash."""
    if partitions <= 1:
        return 0
    return _finalize(base_hash(key) ^ PARTITION_DOMAIN) % partitions


def correlated_partition_of(key: bytes | str, partitions: int) -> int:
    """Spec ``CorrelatedPartitionOf``: the broken design (same hash, both levels)."""
    return 0 if partitions <= 1 else base_hash(key) % partitions


def physical_queue_name(logical: str, partition: int) -> str:
    """Partition 0 is the logical name itself; the rest get ``__p<N>``."""
    return logical if partition == 0 else f"{logical}__p{partition}"


def finalize_array(hashes):  # numpy uint64 array -> numpy uint64 array
    """``_finalize`` for a numpy array of base hashes, XORing the domain first."""
    import numpy as np

    value = hashes ^ np.uint64(PARTITION_DOMAIN)
    value = value ^ (value >> np.uint64(30))
    value = value * np.uint64(0xBF58476D1CE4E5B9)
    value = value ^ (value >> np.uint64(27))
    value = value * np.uint64(0x94D049BB133111EB)
    return value ^ (value >> np.uint64(31))
