"""Routing schemes: which hash picks the enqueue shard and which the partition.

A scheme fixes both levels at once, because what matters is how the two
choices relate for the same key:

* ``AWA_COMPAT`` (default): byte-compatible with awa.  Shards use the base hash
  modulo the shard count (ADR-025); partitions use the domain-separated
  SplitMix64 finalizer of that hash, so the two choices are independent.
* ``XXH3``: opt-in.  xxh3-64 with one seed for shards and another for
  partitions.  Not compatible with awa producers or the SQL twins.
* ``CORRELATED_VERIFICATION_ONLY``: the historical defect (partition = base hash
  modulo the partition count).  It exists so tests, specs and benchmarks can
  show what goes wrong; never route real traffic with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import xxhash

from awa.errors import ValidationError
from awa.routing.hashes import (
    awa_partition_index,
    base_hash,
    coerce_key,
    coerce_keys,
    int_argument,
    key_list,
    partitions_for_ordering_keys,
    shards_for_ordering_keys,
)

#: xxh3 seeds of the XXH3 scheme (ASCII "awa-shrd" and "awa-part").  Part of
#: the contract: changing them re-routes every key.
XXH3_SHARD_SEED = 0x6177612D73687264
XXH3_PARTITION_SEED = 0x6177612D70617274

_ByteRoute = Callable[[bytes, int], int]
_BatchRoute = Callable[[list[Any], int], list[int]]


class RoutingScheme:
    """A named, immutable pair of routing functions (shard and partition).

    ``partition_index(data, partitions)`` and ``shard_index(data, shards)`` take
    already-coerced key bytes and a count of at least 2; the public methods
    validate their input and handle counts of 0 or 1 (always index 0).
    """

    __slots__ = ("_name", "_description", "_verification_only", "_awa_compatible",
                 "partition_index", "shard_index", "_partitions_batch", "_shards_batch")

    def __init__(
        self,
        name: str,
        description: str,
        *,
        partition_index: _ByteRoute,
        shard_index: _ByteRoute,
        partitions_batch: _BatchRoute,
        shards_batch: _BatchRoute,
        verification_only: bool = False,
        awa_compatible: bool = False,
    ) -> None:
        init = object.__setattr__
        init(self, "_name", name)
        init(self, "_description", description)
        init(self, "_verification_only", verification_only)
        init(self, "_awa_compatible", awa_compatible)
        init(self, "partition_index", partition_index)
        init(self, "shard_index", shard_index)
        init(self, "_partitions_batch", partitions_batch)
        init(self, "_shards_batch", shards_batch)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RoutingScheme is immutable")

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def verification_only(self) -> bool:
        """True for schemes that exist only to demonstrate a defect."""
        return self._verification_only

    @property
    def awa_compatible(self) -> bool:
        """True when awa producers (Rust, SQL twins) route keys identically."""
        return self._awa_compatible

    def shard_for_key(self, key: object, shards: int) -> int:
        shards = int_argument(shards, "shards")
        data = coerce_key(key)
        return 0 if shards <= 1 else self.shard_index(data, shards)

    def partition_for_key(self, key: object, partitions: int) -> int:
        partitions = int_argument(partitions, "partitions")
        data = coerce_key(key)
        return 0 if partitions <= 1 else self.partition_index(data, partitions)

    def shards_for_keys(self, keys: Iterable[object], shards: int) -> list[int]:
        shards = int_argument(shards, "shards")
        items = key_list(keys)
        if shards <= 1:
            coerce_keys(items)  # still reject bad keys
            return [0] * len(items)
        return self._shards_batch(items, shards)

    def partitions_for_keys(self, keys: Iterable[object], partitions: int) -> list[int]:
        partitions = int_argument(partitions, "partitions")
        items = key_list(keys)
        if partitions <= 1:
            coerce_keys(items)
            return [0] * len(items)
        return self._partitions_batch(items, partitions)

    def __repr__(self) -> str:
        return f"RoutingScheme({self._name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Schemes are singletons; pickling refers to them by name.
        return (routing_scheme, (self._name,))


# --- awa-compatible ---------------------------------------------------------


_awa_partition = awa_partition_index


def _awa_shard(data: bytes, shards: int) -> int:
    return base_hash(data) % shards


def _awa_partitions_batch(items: list[Any], partitions: int) -> list[int]:
    return partitions_for_ordering_keys(items, partitions)


def _awa_shards_batch(items: list[Any], shards: int) -> list[int]:
    return shards_for_ordering_keys(items, shards)


AWA_COMPAT = RoutingScheme(
    "awa-compat",
    "awa's base hash for shards, its domain-separated SplitMix64 finalizer for partitions",
    partition_index=_awa_partition,
    shard_index=_awa_shard,
    partitions_batch=_awa_partitions_batch,
    shards_batch=_awa_shards_batch,
    awa_compatible=True,
)


# --- xxh3 -------------------------------------------------------------------

_xxh3 = xxhash.xxh3_64_intdigest


def _xxh3_partition(data: bytes, partitions: int) -> int:
    return _xxh3(data, XXH3_PARTITION_SEED) % partitions


def _xxh3_shard(data: bytes, shards: int) -> int:
    return _xxh3(data, XXH3_SHARD_SEED) % shards


def _xxh3_batch(seed: int) -> _BatchRoute:
    def route(items: list[Any], modulus: int) -> list[int]:
        return [_xxh3(k, seed) % modulus for k in coerce_keys(items)]

    return route


XXH3 = RoutingScheme(
    "xxh3",
    "xxh3-64 seeded separately for shards and partitions (opt-in, not awa-compatible)",
    partition_index=_xxh3_partition,
    shard_index=_xxh3_shard,
    partitions_batch=_xxh3_batch(XXH3_PARTITION_SEED),
    shards_batch=_xxh3_batch(XXH3_SHARD_SEED),
)


# --- correlated (verification only) -------------------------------------------


def _correlated_partition(data: bytes, partitions: int) -> int:
    return base_hash(data) % partitions


def _correlated_partitions_batch(items: list[Any], partitions: int) -> list[int]:
    # Deliberately the *shard* function applied to the partition count.
    return shards_for_ordering_keys(items, partitions)


CORRELATED_VERIFICATION_ONLY = RoutingScheme(
    "correlated",
    "VERIFICATION ONLY: partition = base hash mod partitions, correlated with the shard",
    partition_index=_correlated_partition,
    shard_index=_awa_shard,
    partitions_batch=_correlated_partitions_batch,
    shards_batch=_awa_shards_batch,
    verification_only=True,
)

ROUTING_SCHEMES: dict[str, RoutingScheme] = {
    s.name: s for s in (AWA_COMPAT, XXH3, CORRELATED_VERIFICATION_ONLY)
}
DEFAULT_SCHEME = AWA_COMPAT


def routing_scheme(scheme: RoutingScheme | str) -> RoutingScheme:
    """Resolve a scheme object or its name ("awa-compat", "xxh3", "correlated")."""
    if isinstance(scheme, RoutingScheme):
        return scheme
    if isinstance(scheme, str):
        try:
            return ROUTING_SCHEMES[scheme]
        except KeyError:
            known = ", ".join(sorted(ROUTING_SCHEMES))
            raise ValidationError(f"unknown routing scheme {scheme!r}; known: {known}") from None
    raise ValidationError(
        f"scheme must be a RoutingScheme or a scheme name; got {type(scheme).__name__}"
    )


__all__ = [
    "RoutingScheme",
    "AWA_COMPAT",
    "XXH3",
    "CORRELATED_VERIFICATION_ONLY",
    "DEFAULT_SCHEME",
    "ROUTING_SCHEMES",
    "XXH3_SHARD_SEED",
    "XXH3_PARTITION_SEED",
    "routing_scheme",
]
