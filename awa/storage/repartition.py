"""Online repartitioning: the storage operations (no I/O) and the producer's re-routing.

A width change of a registered logical queue (ADR 0024,
``sql/migrations/0001_baseline/16_repartition.sql``) bumps its epoch,
records marks and fences lane heads of the destination partitions; the lift
step takes fences down once their sources have handed out what was enqueued
before the change. Once a queue has changed width the database routes its
keyed jobs with the registered width and the awa hash: single inserts are
re-routed in ``insert_job``, a COPY batch here (:func:`reroute_batch`) with
the widths its reservation returned.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from awa.errors import ValidationError
from awa.routing.names import PARTITION_SUFFIX, split_partition
from awa.routing.schemes import DEFAULT_SCHEME
from awa.storage.batch import Batch
from awa.storage.ops import Op, OpsBase, Query
from awa.storage.validate import check_queue, is_int

MAX_WIDTH = 32767  # queue_partitions' CHECK (PartitionedQueue's physical queues)
DEFAULT_LOCK_TIMEOUT_MS = 2000
DEFAULT_LOCK_ATTEMPTS = 3


def logical_of(queue: str) -> tuple[str, int]:
    """``(logical queue, partition index)`` of a physical queue name."""
    split = split_partition(queue)
    return (queue, 0) if split is None else split


def partition_name(logical: str, index: int) -> str:
    return logical if index == 0 else f"{logical}{PARTITION_SUFFIX}{index}"


def route_row(queue: str, key: bytes | None, widths: dict[str, int]) -> str:
    """Where a row for ``queue`` with ``key`` goes under ``widths`` (the
    twin of the SQL ``route_queue``): a keyed row to the awa partition of its
    key, an unkeyed one named for a removed partition to its index modulo
    the width; 0 or absent leaves the producer's choice."""
    logical, index = logical_of(queue)
    width = widths.get(logical, 0)
    if width <= 0:
        return queue
    if key is not None:
        return partition_name(logical, DEFAULT_SCHEME.partition_for_key(key, width))
    if index < width:
        return queue
    return partition_name(logical, index % width)


def reroute_batch(batch: Batch, widths: dict[str, int]) -> Batch:
    """``batch`` with every row routed by :func:`route_row` (itself when nothing moves)."""
    if not any(w > 0 for w in widths.values()):
        return batch
    keys = batch.row_keys()
    queues = batch.queues if batch.queues is not None else [batch.queue] * batch.n
    routed = [route_row(q, k, widths) for q, k in zip(queues, keys)]
    if routed == queues:
        return batch
    distinct = set(routed)
    if len(distinct) == 1:
        return dataclasses.replace(batch, queue=routed[0], queues=None)
    return dataclasses.replace(batch, queues=routed)


def check_new_width(width: Any) -> int:
    if not is_int(width) or not 1 <= width <= MAX_WIDTH:
        raise ValidationError(f"new width must be an integer between 1 and {MAX_WIDTH}, got {width!r}")
    return int(width)


class RepartitionOps(OpsBase):
    def repartition(
        self,
        logical_queue: str,
        new_width: int,
        lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        attempts: int = DEFAULT_LOCK_ATTEMPTS,
    ) -> Op:
        """Change the width of a registered logical queue online (run in a
        transaction). Returns ``{"logical_queue", "epoch", "old_width",
        "new_width", "changed"}``; :class:`ValidationError` and nothing changed
        for a bad width, an unregistered queue, or a key another change (or a
        producer transaction left open) holds past ``lock_timeout_ms``, ``attempts`` times."""
        check_queue(logical_queue, "logical queue", allow_partition=False)
        width = check_new_width(new_width)
        if not is_int(lock_timeout_ms) or not 1 <= lock_timeout_ms <= 600_000:
            raise ValidationError(f"lock_timeout_ms must be an integer between 1 and 600000, got {lock_timeout_ms!r}")
        if not is_int(attempts) or not 1 <= attempts <= 100:
            raise ValidationError(f"attempts must be an integer between 1 and 100, got {attempts!r}")
        res = yield Query(self.q("repartition"), {
            "queue": logical_queue, "width": width, "timeout": int(lock_timeout_ms), "attempts": int(attempts)})
        outcome, epoch, old = res.rows[0]
        if outcome == "unregistered":
            raise ValidationError(
                f"no partition count is registered for logical queue {logical_queue!r}; record one with "
                f"`awa queue partitions {logical_queue} N` before changing it")
        if outcome == "busy":
            raise ValidationError(
                f"the partition key of {logical_queue!r} stayed held for {attempts} x {lock_timeout_ms} ms "
                "(another width change in progress, or a producer transaction left open); nothing was changed, "
                "try again")
        self._widths.pop(logical_queue, None)
        return {"logical_queue": logical_queue, "epoch": int(epoch), "old_width": int(old), "new_width": width,
                "changed": outcome == "changed"}

    def repartition_status(self, logical_queue: str) -> Op:
        """The registered width and epoch, and every change with its fences
        (``fences_up``: unlifted) and ``finished_at`` (None while it drains)."""
        check_queue(logical_queue, "logical queue", allow_partition=False)
        res = yield Query(self.q("repartition_status"), {"queue": logical_queue})
        if not res.rows:
            raise ValidationError(f"no partition count is registered for logical queue {logical_queue!r}")
        width, epoch = res.rows[0][1], res.rows[0][2]
        changes = [dict(zip(res.names[3:], row[3:])) for row in res.rows if row[3] is not None]
        return {"logical_queue": logical_queue, "width": int(width), "epoch": int(epoch),
                "in_progress": any(c["finished_at"] is None for c in changes), "changes": changes}

    def lift_fences(self, logical_queue: str | None = None) -> Op:
        """The lift step: fences lifted (changes finished as a side effect)."""
        if logical_queue is not None:
            check_queue(logical_queue, "logical queue", allow_partition=False)
        res = yield Query(self.q("lift_fences"), {"queue": logical_queue})
        return int(res.rows[0][0])

    def partition_spans(self) -> Op:
        """``{logical queue: (width, epoch, span)}``; span: partitions 0..span-1
        hold work (above the width while a shrink drains)."""
        res = yield Query(self.q("partition_spans"), {})
        return {name: (int(w), int(e), int(span)) for name, w, e, span in res.rows}
