"""Parsing and validation of ``start()`` arguments into immutable queue plans.

Everything here is pure: no database, no event loop. ``start()`` calls
:func:`plan_queues` before it opens a single connection, so a bad config
fails fast and leaves nothing running.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from awa.errors import ValidationError
from awa.storage.validate import check_queue
from awa.worker.retention import parse_queue_retention

# Defaults chosen to match awa's documented behaviour where one exists.
DEFAULT_INFERRED_MAX_WORKERS = 10  # queues=None: one queue per declared handler queue
DEFAULT_CLAIMERS = 1
DEFAULT_CLAIM_BATCH_SIZE = 512
DEFAULT_DEADLINE_DURATION_MS = 300_000  # 5 minutes; 0 disables the per-attempt deadline
# Off unless asked for (awa defaults to 60 s): aging makes every claim look up
# each lane's head job, several times the cost of a plain claim.
DEFAULT_PRIORITY_AGING_INTERVAL_MS = 0

_DICT_KEYS = frozenset(
    {
        "name",
        "max_workers",
        "min_workers",
        "weight",
        "rate_limit",
        "claimers",
        "claim_batch_size",
        "deadline_duration_ms",
        "priority_aging_interval_ms",
        "partitions",
        "shared_slots",
        "retention",
    }
)


class RateLimitTypeError(ValidationError, TypeError):
    """A ``rate_limit`` of the wrong shape (awa raises ``TypeError`` here)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    max_rate: float  # sustained jobs started per second
    burst: int  # bucket size; 0 means ceil(max_rate)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst > 0 else max(1, math.ceil(self.max_rate))


@dataclass(frozen=True, slots=True)
class QueuePlan:
    """One unit of capacity as the runtime will serve it: a physical queue, or
    (``partitions`` set: a ``shared_slots`` entry) every partition of a logical
    queue with one shared set of slots, claimed together (ADR 0014)."""

    name: str
    max_workers: int | None  # hard-reserved mode
    min_workers: int  # weighted mode: guaranteed slots
    weight: int  # weighted mode: share of the overflow pool
    rate_limit: RateLimit | None
    claimers: int
    claim_batch_size: int
    deadline_duration_ms: int
    priority_aging_interval_ms: int
    partitions: int | None = None  # shared_slots: a logical queue whose partitions share the slots above
    retention: Any = None  # awa-pg's per-queue {"completed_hours": h, "failed_hours": h} (awa.worker.retention)

    @property
    def physical_queues(self) -> tuple[str, ...]:
        """The physical queues this entry serves (its own name unless partitioned)."""
        if self.partitions is None:
            return (self.name,)
        from awa.routing import PartitionedQueue

        return tuple(PartitionedQueue(self.name, self.partitions).physical_queues)


@dataclass(frozen=True, slots=True)
class RuntimePlan:
    queues: tuple[QueuePlan, ...]
    global_max_workers: int | None

    @property
    def weighted(self) -> bool:
        return self.global_max_workers is not None

    @property
    def total_claimers(self) -> int:
        return sum(q.claimers for q in self.queues)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_field(cfg: dict[str, Any], key: str, queue: str, *, minimum: int) -> int | None:
    if key not in cfg or cfg[key] is None:
        return None
    value = cfg[key]
    if not _is_int(value):
        raise ValidationError(f"{key} for queue '{queue}' must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValidationError(f"{key} must be > 0" if minimum == 1 else f"{key} must be >= {minimum}")
    return value


def _parse_rate_limit(value: Any) -> RateLimit | None:
    if value is None:
        return None
    shape_ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and isinstance(value[0], (int, float))
        and not isinstance(value[0], bool)
        and _is_int(value[1])
    )
    if not shape_ok:
        raise RateLimitTypeError("rate_limit must be a (max_rate: float, burst: int) tuple or None")
    max_rate, burst = float(value[0]), int(value[1])
    if not (max_rate > 0.0) or math.isinf(max_rate):
        raise ValidationError("rate_limit max_rate must be > 0.0")
    if burst < 0:
        raise ValidationError("rate_limit burst must be >= 0 (0 means ceil(max_rate))")
    return RateLimit(max_rate, burst)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"queue name must be a non-empty str, got {name!r}")
    return check_queue(name, "queue name")


def _parse_one(item: Any, global_max_workers: int | None) -> list[QueuePlan]:
    """The plans of one ``queues`` entry: one, or one per partition for a
    ``partitions`` entry without ``shared_slots`` (each partition gets the
    entry's settings, as ``queue_configs`` would write them)."""
    if isinstance(item, dict) and item.get("partitions") is not None and not _shared_slots(item):
        if "name" not in item:
            raise ValidationError("queue config dict must have 'name' key")
        name = _check_name(item["name"])
        partitions = _int_field(item, "partitions", name, minimum=1)
        from awa.routing import PartitionedQueue

        settings = {k: v for k, v in item.items() if k not in ("name", "partitions", "shared_slots")}
        physical = PartitionedQueue(name, partitions).physical_queues  # type: ignore[arg-type]
        return [_parse_entry({"name": queue, **settings}, global_max_workers) for queue in physical]
    return [_parse_entry(item, global_max_workers)]


def _shared_slots(item: dict[str, Any]) -> bool:
    shared = item.get("shared_slots")
    if shared is not None and not isinstance(shared, bool):
        raise ValidationError(f"shared_slots for queue '{item.get('name')}' must be a bool, got {type(shared).__name__}")
    return bool(shared)


def _parse_entry(item: Any, global_max_workers: int | None) -> QueuePlan:
    if isinstance(item, tuple):
        if global_max_workers is not None:
            raise ValidationError(
                "tuple queue config is not supported with global_max_workers; use dict form with min_workers/weight"
            )
        if len(item) != 2 or not _is_int(item[1]):
            raise ValidationError(f"tuple queue config must be (name, max_workers), got {item!r}")
        name = _check_name(item[0])
        if item[1] < 1:
            raise ValidationError("max_workers must be > 0")
        return QueuePlan(
            name=name,
            max_workers=item[1],
            min_workers=0,
            weight=1,
            rate_limit=None,
            claimers=DEFAULT_CLAIMERS,
            claim_batch_size=DEFAULT_CLAIM_BATCH_SIZE,
            deadline_duration_ms=DEFAULT_DEADLINE_DURATION_MS,
            priority_aging_interval_ms=DEFAULT_PRIORITY_AGING_INTERVAL_MS,
        )

    if not isinstance(item, dict):
        raise ValidationError(f"queue config must be a (name, max_workers) tuple or a dict, got {type(item).__name__}")
    if "name" not in item:
        raise ValidationError("queue config dict must have 'name' key")
    name = _check_name(item["name"])
    unknown = sorted(set(item) - _DICT_KEYS)
    if unknown:
        raise ValidationError(f"unknown queue config key(s) for queue '{name}': {', '.join(map(str, unknown))}")

    has_max = item.get("max_workers") is not None
    has_min = item.get("min_workers") is not None
    if has_max and has_min:
        raise ValidationError("use max_workers for hard-reserved mode or min_workers for weighted mode, not both")
    if global_max_workers is None:
        if has_min:
            # awa silently falls back to 50 hard-reserved workers here; we refuse.
            raise ValidationError(
                f"min_workers for queue '{name}' requires global_max_workers (weighted mode); "
                "use max_workers for hard-reserved mode"
            )
        if not has_max:
            raise ValidationError("max_workers required in hard-reserved mode (no global_max_workers set)")
    elif has_max:
        raise ValidationError(
            f"max_workers for queue '{name}' is a hard-reserved setting; with global_max_workers set "
            "use min_workers/weight"
        )

    max_workers = _int_field(item, "max_workers", name, minimum=1)
    min_workers = _int_field(item, "min_workers", name, minimum=0) or 0
    weight = _int_field(item, "weight", name, minimum=1)
    claimers = _int_field(item, "claimers", name, minimum=1)
    batch = _int_field(item, "claim_batch_size", name, minimum=1)
    deadline = _int_field(item, "deadline_duration_ms", name, minimum=0)
    aging = _int_field(item, "priority_aging_interval_ms", name, minimum=0)
    shared = _shared_slots(item)
    partitions = _int_field(item, "partitions", name, minimum=1) if shared else None
    if shared:
        if partitions is None:
            raise ValidationError(f"shared_slots for queue '{name}' needs partitions (the logical queue's width)")
        from awa.routing import PartitionedQueue

        PartitionedQueue(name, partitions)  # the logical name and the width, checked like any partitioned queue
    return QueuePlan(
        name=name,
        max_workers=max_workers,
        min_workers=min_workers,
        weight=1 if weight is None else weight,
        rate_limit=_parse_rate_limit(item.get("rate_limit")),
        claimers=DEFAULT_CLAIMERS if claimers is None else claimers,
        claim_batch_size=DEFAULT_CLAIM_BATCH_SIZE if batch is None else batch,
        deadline_duration_ms=DEFAULT_DEADLINE_DURATION_MS if deadline is None else deadline,
        priority_aging_interval_ms=DEFAULT_PRIORITY_AGING_INTERVAL_MS if aging is None else aging,
        partitions=partitions,
        retention=_retention(item.get("retention"), name),
    )


def _retention(value: Any, name: str) -> Any:
    parse_queue_retention(value, name)  # checked here, applied by the maintenance leader
    return value


def plan_queues(
    queues: Sequence[Any] | None,
    *,
    global_max_workers: int | None,
    declared_queues: Iterable[str],
) -> RuntimePlan:
    """Validate ``start()`` queue arguments against the declared handler queues."""
    declared = list(dict.fromkeys(declared_queues))
    if global_max_workers is not None and (not _is_int(global_max_workers) or global_max_workers < 1):
        raise ValidationError("global_max_workers must be an int > 0")

    if queues is None:
        if global_max_workers is not None:
            raise ValidationError("weighted mode requires explicit queue configs (global_max_workers set but queues=None)")
        plans = [_parse_entry((name, DEFAULT_INFERRED_MAX_WORKERS), None) for name in declared]
    else:
        if isinstance(queues, (str, bytes, dict)) or not isinstance(queues, Iterable):
            raise ValidationError("queues must be a list of (name, max_workers) tuples or queue config dicts")
        plans = [plan for item in queues for plan in _parse_one(item, global_max_workers)]

    if not plans:
        raise ValidationError("at least one queue must be configured")

    seen: set[str] = set()
    for plan in plans:
        for name in plan.physical_queues:
            if name in seen:
                raise ValidationError(f"queue '{name}' configured more than once")
            seen.add(name)

    if global_max_workers is not None:
        total_min = sum(p.min_workers for p in plans)
        if total_min > global_max_workers:
            raise ValidationError(f"sum of min_workers ({total_min}) exceeds global_max_workers ({global_max_workers})")

    missing = [name for name in declared if name not in seen]
    if missing:
        raise ValidationError(
            "start() must configure the worker queues declared via @client.task(..., queue=...): " + ", ".join(missing)
        )
    return RuntimePlan(tuple(plans), global_max_workers)
