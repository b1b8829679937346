"""Retention and the partition registry: the storage operations (no I/O).

Retention deletes finished jobs after their queue's retention in bounded
batches, prunes old dead-letter entries, and rolls terminal counts up so
``queue_stats`` stays cheap however many finished jobs are stored
(``sql/migrations/0001_baseline/08_retention.sql``). The registry records the
partition count of a logical queue (``10_partitions.sql``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awa.errors import PartitionCountMismatch, ValidationError
from awa.routing.partitioned_queue import MAX_PHYSICAL_QUEUES, PartitionedQueue
from awa.routing.schemes import DEFAULT_SCHEME
from awa.storage.ops import Op, OpsBase, Query, int_array, text_array
from awa.storage.validate import MAX_DELAY_SECONDS, MAX_INT4, check_name, check_queue, is_finite_number, is_int

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long finished jobs stay, in seconds: completed ones, failed and cancelled ones."""

    completed_s: float
    failed_s: float


def check_hours(value: Any, name: str) -> float:
    """A non-negative finite number of hours (awa-pg's rule and wording)."""
    if not is_finite_number(value) or value < 0:
        raise ValidationError(f"{name} must be a non-negative finite number")
    if value > MAX_DELAY_SECONDS / 3600:
        raise ValidationError(f"{name} must be at most {MAX_DELAY_SECONDS / 3600:.0f} hours (100 years), got {value!r}")
    return float(value)


def check_limit(limit: Any, name: str = "limit") -> int:
    if not is_int(limit) or limit <= 0:
        raise ValidationError(f"{name} must be > 0")
    if limit > MAX_INT4:
        raise ValidationError(f"{name} must be at most {MAX_INT4}, got {limit!r}")
    return int(limit)


def check_width(partitions: Any) -> int:
    if not is_int(partitions) or not 1 <= partitions <= MAX_PHYSICAL_QUEUES:
        raise ValidationError(f"partitions must be an integer between 1 and {MAX_PHYSICAL_QUEUES}, got {partitions!r}")
    return int(partitions)


def _interval(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def _intervals(values: list[float]) -> str:
    """An interval[] literal of seconds (exact: no float text rounding beyond microseconds)."""
    return "{" + ",".join(f'"{v:.6f} seconds"' for v in values) + "}"


class HousekeepingOps(OpsBase):
    # -- retention -----------------------------------------------------------

    def prune_terminal(
        self, default: RetentionPolicy, per_queue: Mapping[str, RetentionPolicy], limit: int
    ) -> Op:
        """One batch: at most ``limit`` finished jobs past retention deleted;
        ``[(queue, state, deleted), ...]``."""
        limit = check_limit(limit)
        names = sorted(per_queue)
        res = yield Query(
            self.q("prune_terminal"),
            {
                "now": self.now(),
                "completed": _interval(default.completed_s),
                "failed": _interval(default.failed_s),
                "queues": text_array(names),
                "queue_completed": _intervals([per_queue[n].completed_s for n in names]),
                "queue_failed": _intervals([per_queue[n].failed_s for n in names]),
                "limit": limit,
            },
        )
        return [(q, s, int(n)) for q, s, n in res.rows]

    def prune_dlq(self, retention_s: float, limit: int) -> Op:
        limit = check_limit(limit)
        res = yield Query(self.q("prune_dlq"), {"now": self.now(), "retention": _interval(retention_s), "limit": limit})
        return int(res.rows[0][0])

    def rollup_terminal_counts(self, lag_s: float) -> Op:
        """Fold the terminal rows finished more than ``lag_s`` ago into the counts."""
        res = yield Query(self.q("rollup_terminal_counts"), {"lag": _interval(lag_s)})
        return int(res.rows[0][0])

    def job_queues(self, ids: list[int]) -> Op:
        """``{job id: queue}`` of the jobs that exist."""
        res = yield Query(self.q("job_queues"), {"ids": int_array(ids)})
        return dict(res.rows)

    # -- partition registry --------------------------------------------------

    def register_partitions(self, logical_queue: str, partitions: int) -> Op:
        """Record the width unless one is recorded; ``(recorded width, created)``."""
        check_queue(logical_queue, "logical queue", allow_partition=False)
        partitions = check_width(partitions)
        res = yield Query(self.q("register_partitions"), {"queue": logical_queue, "partitions": partitions})
        width, created = res.rows[0]
        return int(width), bool(created)

    def set_partitions(self, logical_queue: str, partitions: int) -> Op:
        """Record the width, replacing any; returns the width recorded before (or None)."""
        check_queue(logical_queue, "logical queue", allow_partition=False)
        partitions = check_width(partitions)
        res = yield Query(self.q("set_partitions"), {"queue": logical_queue, "partitions": partitions})
        before = res.rows[0][0]
        return None if before is None else int(before)

    def get_partitions(self, logical_queue: str | None) -> Op:
        """``{logical queue: width}`` of one queue or every registered one."""
        if logical_queue is not None:
            check_queue(logical_queue, "logical queue", allow_partition=False)
        res = yield Query(self.q("get_partitions"), {"queue": logical_queue})
        return {name: int(width) for name, width in res.rows}

    def partitioned_queue(self, logical_queue: str, partitions: int | None, scheme: Any = DEFAULT_SCHEME) -> Op:
        """A :class:`PartitionedQueue` whose width agrees with the registry.

        ``partitions=None`` takes the registered width; a width is registered
        by the first caller; another width raises :class:`PartitionCountMismatch`.
        """
        if partitions is None:
            check_queue(logical_queue, "logical queue", allow_partition=False)
            found = yield from self.get_partitions(logical_queue)
            if logical_queue not in found:
                raise ValidationError(
                    f"no partition count is registered for logical queue {logical_queue!r}; pass partitions= "
                    f"or record one with `awa queue partitions {logical_queue} N`"
                )
            return PartitionedQueue(logical_queue, found[logical_queue], scheme=scheme)
        pq = PartitionedQueue(logical_queue, partitions, scheme=scheme)  # validates before any write
        width, _created = yield from self.register_partitions(logical_queue, pq.partitions)
        if width != pq.partitions:
            raise PartitionCountMismatch(logical_queue, width, pq.partitions)
        return pq

    # -- maintenance leadership (11_leader_lease.sql, ADR 0019) ----------------

    def acquire_leader_lease(self, role: str, holder: str, ttl_s: float) -> Op:
        """Take or renew the lease of ``role`` for ``ttl_s`` seconds of the
        database's clock; False while another holder's lease is live."""
        check_name(role, "leader role")
        check_name(holder, "leader holder")
        ttl = dt.timedelta(seconds=float(ttl_s))
        res = yield Query(self.q("acquire_leader_lease"), {"role": role, "holder": holder, "ttl": ttl})
        return bool(res.rows[0][0])

    def release_leader_lease(self, role: str, holder: str) -> Op:
        """End ``holder``'s live lease of ``role`` now (False when it held none)."""
        res = yield Query(self.q("release_leader_lease"), {"role": role, "holder": holder})
        return bool(res.rows[0][0])

    def leader_leases(self) -> Op:
        """Every lease row as a dict (``live``: not yet expired by the database's clock)."""
        res = yield Query(self.q("leader_leases"), {})
        return [dict(zip(res.names, row)) for row in res.rows]
