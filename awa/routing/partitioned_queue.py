"""``PartitionedQueue``: one logical queue spread over several physical queues.

Same names, routes, queue configs and error texts as awa's Python
``PartitionedQueue``; in addition a routing scheme is chosen per instance
(default: the awa-compatible one) and there are batch routes for many keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from awa.errors import ValidationError
from awa.routing.names import queue_name_problem
from awa.routing.hashes import KEY_TYPE_ERROR, base_hash, coerce_key, finalize_partition_hash, int_argument
from awa.routing.routed_opts import BatchRouter, RoutedOpts, check_index
from awa.routing.schemes import AWA_COMPAT, DEFAULT_SCHEME, RoutingScheme, routing_scheme

PHYSICAL_QUEUE_SUFFIX = "__p"
# Physical queue indexes are stored as smallint next to enqueue shards.
MAX_PHYSICAL_QUEUES = 32767
_U16_MAX = (1 << 16) - 1
_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1


def _option(value: object, name: str, *, maximum: int, positive: bool) -> int:
    """Integer option: type, sign and upper bound (awa stores these as u16/u32/u64).

    Zero is let through even for ``positive`` options: awa reports zero only
    after its cross-argument checks, and so does ``queue_configs``.
    """
    number = int_argument(value, name)
    if number < 0:
        raise ValidationError(f"{name} must be {'> 0' if positive else '>= 0'}")
    if number > maximum:
        raise ValidationError(f"{name} must be <= {maximum}")
    return number


def _check_count(count: int) -> None:
    if count <= 0:
        raise ValidationError("partitioned queue partitions must be > 0")
    if count > MAX_PHYSICAL_QUEUES:
        raise ValidationError(
            f"partitioned queue supports at most {MAX_PHYSICAL_QUEUES} physical queues; got {count}"
        )


def _check_logical(logical_queue: object) -> str:
    if not isinstance(logical_queue, str):
        raise ValidationError(
            f"partitioned queue logical queue must be a str; got {type(logical_queue).__name__}"
        )
    if not logical_queue:
        raise ValidationError("partitioned queue logical queue must not be empty")
    problem = queue_name_problem(logical_queue, allow_partition=False)
    if problem is not None:
        raise ValidationError(f"partitioned queue logical queue {problem}")
    return logical_queue


def _debug_quote(text: str) -> str:
    """Double-quoted like awa's repr (Rust Debug formatting of a string)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class PartitionedQueue:
    """A fixed, ordered list of physical queues serving one logical queue.

    ``PartitionedQueue("email", 4)`` gives ``["email", "email__p1",
    "email__p2", "email__p3"]``: partition 0 keeps the logical name, so a
    1 -> N rollout never strands jobs enqueued to the plain name.
    """

    __slots__ = ("_logical", "_queues", "_count", "_scheme", "_route", "_inline_awa", "_hash", "_router")

    def __init__(
        self,
        logical_queue: str,
        partitions: int,
        *,
        scheme: RoutingScheme | str = DEFAULT_SCHEME,
    ) -> None:
        # awa checks the count before the name.
        count = int_argument(partitions, "partitioned queue partitions")
        if count <= 0:
            raise ValidationError("partitioned queue partitions must be > 0")
        logical = _check_logical(logical_queue)
        _check_count(count)
        queues = [logical]
        queues.extend(f"{logical}{PHYSICAL_QUEUE_SUFFIX}{i}" for i in range(1, count))
        self._init(logical, tuple(queues), routing_scheme(scheme))

    @classmethod
    def from_physical_queues(
        cls,
        logical_queue: str,
        physical_queues: Iterable[str],
        *,
        scheme: RoutingScheme | str = DEFAULT_SCHEME,
    ) -> PartitionedQueue:
        """Use explicit physical queue names, in the caller's order."""
        logical = _check_logical(logical_queue)
        if isinstance(physical_queues, (str, bytes, bytearray)):
            raise ValidationError("physical_queues must be a list of queue names, not a single str")
        try:
            queues = tuple(physical_queues)
        except TypeError:
            raise ValidationError(
                f"physical_queues must be an iterable of str; got {type(physical_queues).__name__}"
            ) from None
        _check_count(len(queues))
        seen: set[str] = set()
        for queue in queues:
            if not isinstance(queue, str):
                raise ValidationError(
                    f"partitioned queue physical queue must be a str; got {type(queue).__name__}"
                )
            if not queue:
                raise ValidationError("partitioned queue physical queue must not be empty")
            if queue in seen:
                raise ValidationError(f"partitioned queue physical queue '{queue}' is duplicated")
            seen.add(queue)
        resolved = routing_scheme(scheme)
        self = cls.__new__(cls)
        self._init(logical, queues, resolved)
        return self

    def _init(self, logical: str, queues: tuple[str, ...], scheme: RoutingScheme) -> None:
        setter = object.__setattr__
        setter(self, "_logical", logical)
        setter(self, "_queues", queues)
        setter(self, "_scheme", scheme)
        setter(self, "_route", scheme.partition_index)
        setter(self, "_count", len(queues))
        # Only the default scheme with more than one queue takes the inline path.
        setter(self, "_inline_awa", scheme is AWA_COMPAT and len(queues) > 1)
        setter(self, "_hash", hash((logical, queues, scheme.name)))
        # The batch routes (route_by_keys keeps its memo of keys there).
        setter(self, "_router", BatchRouter(queues, scheme.partitions_for_keys))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PartitionedQueue is immutable")

    # -- read-only facts -----------------------------------------------------

    @property
    def logical_queue(self) -> str:
        return self._logical

    @property
    def physical_queues(self) -> list[str]:
        """A fresh list each time: mutating it cannot change the routing."""
        return list(self._queues)

    @property
    def partitions(self) -> int:
        return len(self._queues)

    @property
    def scheme(self) -> RoutingScheme:
        return self._scheme

    # -- single routes -------------------------------------------------------

    def partition_for_key(self, key: object) -> int:
        """Index in :attr:`physical_queues` of the partition a key routes to."""
        data = coerce_key(key)
        n = len(self._queues)
        return 0 if n == 1 else self._route(data, n)

    def queue_for_key(self, key: object) -> str:
        """The physical queue of a key; the same key always gets the same queue."""
        # Hot path: coerce the two common key types inline and, for the
        # default scheme, call the two hash functions directly rather than
        # through the scheme; each Python-level call saved is measurable here.
        if type(key) is str:
            try:
                data = key.encode()  # type: ignore[union-attr]
            except UnicodeEncodeError as exc:
                raise ValidationError(KEY_TYPE_ERROR) from exc
        elif type(key) is bytes:
            data = key  # type: ignore[assignment]
        else:
            data = coerce_key(key)
        if self._inline_awa:
            return self._queues[finalize_partition_hash(base_hash(data)) % self._count]
        queues = self._queues
        n = self._count
        return queues[0] if n == 1 else queues[self._route(data, n)]

    def queue_for_index(self, index: int) -> str:
        """Round robin: physical queue ``index % partitions``."""
        return self._queues[check_index(index) % len(self._queues)]

    def route_by_key(self, key: object) -> dict[str, Any]:
        """Insert kwargs routed by key: ``{"queue": ..., "ordering_key": <bytes>}``.

        The ordering key travels with the job so per-key FIFO also holds across
        the enqueue shards inside the chosen physical queue.
        """
        data = coerce_key(key)
        if self._inline_awa:  # as in queue_for_key
            index = finalize_partition_hash(base_hash(data)) % self._count
        else:
            index = 0 if self._count == 1 else self._route(data, self._count)
        return {"queue": self._queues[index], "ordering_key": data}

    def route_by_index(self, index: int) -> dict[str, Any]:
        """Insert kwargs routed round robin: ``{"queue": ...}``."""
        if index.__class__ is int and index >= 0:  # the common case, checked inline (a dict per job: keep it short)
            return {"queue": self._queues[index % self._count]}
        return {"queue": self.queue_for_index(index)}

    # -- batch routes --------------------------------------------------------

    def partitions_for_keys(self, keys: Iterable[object]) -> list[int]:
        """:meth:`partition_for_key` of every key, in order (vectorised when possible)."""
        return self._scheme.partitions_for_keys(keys, len(self._queues))

    def queues_for_keys(self, keys: Iterable[object]) -> list[str]:
        """:meth:`queue_for_key` of every key, in order (vectorised when possible)."""
        return list(map(self._queues.__getitem__, self.partitions_for_keys(keys)))

    def route_by_keys(self, keys: Iterable[object]) -> RoutedOpts:
        """:meth:`route_by_key` of every key, in order, as a read-only sequence.

        Equal to ``[route_by_key(k) for k in keys]``; kept as two columns
        (queues, keys) that ``enqueue_many_copy`` reads without one dict per job.
        Each distinct key is encoded and hashed once; short str/bytes keys are
        remembered (bounded), since producers send the same keys batch after
        batch (see :class:`~awa.routing.routed_opts.BatchRouter`).
        """
        return self._router.route_keys(keys)

    def route_by_indexes(self, indexes: Iterable[int]) -> RoutedOpts:
        """:meth:`route_by_index` of every index, in order, as a read-only sequence."""
        return self._router.route_indexes(indexes)

    def queues_for_indexes(self, indexes: Iterable[int]) -> list[str]:
        """:meth:`queue_for_index` of every index, in order."""
        return self._router.queues_for_indexes(indexes)

    # -- worker configuration ------------------------------------------------

    def queue_configs(
        self,
        max_workers_per_partition: int | None = None,
        *,
        min_workers_per_partition: int | None = None,
        weight: int = 1,
        rate_limit_per_partition: Any = None,
        priority_aging_interval_ms: int | None = None,
        deadline_duration_ms: int | None = None,
        claimers: int | None = None,
        claim_batch_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """One queue config dict per physical queue, for the worker runtime.

        Hard-reserved mode (``max_workers_per_partition``) gives ``name`` and
        ``max_workers``; weighted mode (``min_workers_per_partition``) gives
        ``name``, ``min_workers`` and ``weight``.  Options left ``None`` are
        omitted.  Capacity is per partition, so the logical queue gets about
        ``partitions`` times as much.
        """
        # Type and range checks of each argument first (like argument
        # conversion in awa), then awa's cross-argument checks in its order.
        max_workers = min_workers = None
        if max_workers_per_partition is not None:
            max_workers = _option(
                max_workers_per_partition, "max_workers_per_partition", maximum=_U32_MAX, positive=True
            )
        if min_workers_per_partition is not None:
            min_workers = _option(
                min_workers_per_partition, "min_workers_per_partition", maximum=_U32_MAX, positive=False
            )
        weight_value = _option(weight, "weight", maximum=_U32_MAX, positive=True)
        aging = deadline = claimer_count = batch_size = None
        if priority_aging_interval_ms is not None:
            aging = _option(
                priority_aging_interval_ms, "priority_aging_interval_ms", maximum=_U64_MAX, positive=False
            )
        if deadline_duration_ms is not None:
            deadline = _option(
                deadline_duration_ms, "deadline_duration_ms", maximum=_U64_MAX, positive=False
            )
        if claimers is not None:
            claimer_count = _option(claimers, "claimers", maximum=_U16_MAX, positive=True)
        if claim_batch_size is not None:
            batch_size = _option(claim_batch_size, "claim_batch_size", maximum=_U64_MAX, positive=True)

        if max_workers is not None and min_workers is not None:
            raise ValidationError(
                "use max_workers_per_partition or min_workers_per_partition, not both"
            )
        if max_workers is None and min_workers is None:
            raise ValidationError(
                "queue_configs requires max_workers_per_partition or min_workers_per_partition"
            )
        if max_workers == 0:
            raise ValidationError("max_workers_per_partition must be > 0")
        if weight_value == 0:
            raise ValidationError("weight must be > 0")
        if claimer_count == 0:
            raise ValidationError("claimers must be > 0")
        if batch_size == 0:
            raise ValidationError("claim_batch_size must be > 0")

        configs: list[dict[str, Any]] = []
        for queue in self._queues:
            config: dict[str, Any] = {"name": queue}
            if max_workers is not None:
                config["max_workers"] = max_workers
            if min_workers is not None:
                config["min_workers"] = min_workers
                config["weight"] = weight_value
            if rate_limit_per_partition is not None:
                config["rate_limit"] = rate_limit_per_partition
            if aging is not None:
                config["priority_aging_interval_ms"] = aging
            if deadline is not None:
                config["deadline_duration_ms"] = deadline
            if claimer_count is not None:
                config["claimers"] = claimer_count
            if batch_size is not None:
                config["claim_batch_size"] = batch_size
            configs.append(config)
        return configs

    def shared_queue_config(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int | None = None,
        weight: int = 1,
        rate_limit: Any = None,
        priority_aging_interval_ms: int | None = None,
        deadline_duration_ms: int | None = None,
        claimers: int | None = None,
        claim_batch_size: int | None = None,
    ) -> dict[str, Any]:
        """One queue config for the whole logical queue: its partitions share
        ``max_workers`` slots (or, in weighted mode, ``min_workers`` and one
        ``weight``) and are claimed together, each claim taking jobs from
        whichever partitions have them (ADR 0014).

        Unlike :meth:`queue_configs`, capacity is not split per partition, so a
        worker's claims stay as large as on one plain queue and a hot partition
        may use every slot. ``rate_limit`` bounds the logical queue's start rate.
        """
        if not self._has_default_names():
            raise ValidationError(
                "shared_queue_config needs the default partition names "
                f"({self._logical}, {self._logical}{PHYSICAL_QUEUE_SUFFIX}1, ...); "
                "use queue_configs for explicit physical queues"
            )
        config: dict[str, Any] = {"name": self._logical, "partitions": len(self._queues), "shared_slots": True}
        if max_workers is not None and min_workers is not None:
            raise ValidationError("use max_workers or min_workers, not both")
        if max_workers is None and min_workers is None:
            raise ValidationError("shared_queue_config requires max_workers or min_workers")
        if max_workers is not None:
            config["max_workers"] = _option(max_workers, "max_workers", maximum=_U32_MAX, positive=True)
            if config["max_workers"] == 0:
                raise ValidationError("max_workers must be > 0")
        else:
            config["min_workers"] = _option(min_workers, "min_workers", maximum=_U32_MAX, positive=False)
            config["weight"] = _option(weight, "weight", maximum=_U32_MAX, positive=True)
            if config["weight"] == 0:
                raise ValidationError("weight must be > 0")
        optional = {
            "rate_limit": rate_limit,
            "priority_aging_interval_ms": priority_aging_interval_ms,
            "deadline_duration_ms": deadline_duration_ms,
            "claimers": claimers,
            "claim_batch_size": claim_batch_size,
        }
        config.update((key, value) for key, value in optional.items() if value is not None)
        return config

    def _has_default_names(self) -> bool:
        """Partition 0 is the logical name and partition i its ``__p{i}`` name."""
        return self._queues == (self._logical,) + tuple(
            f"{self._logical}{PHYSICAL_QUEUE_SUFFIX}{i}" for i in range(1, len(self._queues))
        )

    # -- container protocol --------------------------------------------------

    def __len__(self) -> int:
        return len(self._queues)

    def __iter__(self) -> Iterator[str]:
        return iter(self._queues)

    def __contains__(self, queue: object) -> bool:
        return queue in self._queues

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PartitionedQueue):
            return NotImplemented
        return (
            self._logical == other._logical
            and self._queues == other._queues
            and self._scheme is other._scheme
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        default_names = self._has_default_names()
        text = (
            f"PartitionedQueue(logical_queue={_debug_quote(self._logical)}, "
            f"partitions={len(self._queues)}"
        )
        if not default_names:
            text += ", physical_queues=[" + ", ".join(map(_debug_quote, self._queues)) + "]"
        return text + f", scheme={_debug_quote(self._scheme.name)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._logical, list(self._queues), self._scheme.name))


def _rebuild(logical: str, queues: list[str], scheme: str) -> PartitionedQueue:
    return PartitionedQueue.from_physical_queues(logical, queues, scheme=scheme)


__all__ = ["PartitionedQueue", "MAX_PHYSICAL_QUEUES", "PHYSICAL_QUEUE_SUFFIX"]
