"""The partition counts a worker serves, checked against the registry.

A worker gets physical queue names (``queue_configs`` writes one entry per
partition; a ``shared_slots`` entry names its width). From the names the
runtime infers each logical queue's width: ``orders``, ``orders__p1`` ..
``orders__p3`` is 4. At start it records widths of 2 or more that nobody
recorded yet, and warns, naming both counts, when the recorded width differs:
jobs in partitions the worker does not serve would wait for ever.

While it runs, :class:`WidthFollower` polls the registry and adds to each
shared entry (``partitions`` set) the partitions a width change gave its
logical queue (ADR 0024). Partitions are never dropped while the runtime
runs, so removed ones keep being served until they are drained and after.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from awa.routing.partitioned_queue import PHYSICAL_QUEUE_SUFFIX

log = logging.getLogger("awa.worker")

_PARTITION = re.compile(r"(.+)" + re.escape(PHYSICAL_QUEUE_SUFFIX) + r"([1-9][0-9]*)")


def served_widths(plan: Any) -> dict[str, int]:
    """``{logical queue: width}`` the plan serves (plain queues have width 1)."""
    names = {name for queue in plan.queues for name in queue.physical_queues}
    indexes: dict[str, set[int]] = {}
    for name in names:
        match = _PARTITION.fullmatch(name)
        if match:
            indexes.setdefault(match.group(1), set()).add(int(match.group(2)))
    widths: dict[str, int] = {}
    for name in names:
        if _PARTITION.fullmatch(name) and _PARTITION.fullmatch(name).group(1) in names:  # type: ignore[union-attr]
            continue  # a partition of a served logical queue
        found = indexes.get(name, set()) | {0}
        width = 1
        while width in found:
            width += 1
        widths[name] = width
    for queue in plan.queues:
        if queue.partitions is not None:
            widths[queue.name] = queue.partitions
    return widths


def mismatch_text(logical: str, registered: int, served: int) -> str:
    if served < registered:
        idle = f"{logical}{PHYSICAL_QUEUE_SUFFIX}{served}"
        if registered - served > 1:
            idle += f"..{logical}{PHYSICAL_QUEUE_SUFFIX}{registered - 1}"
        return (f"logical queue {logical!r} is registered with {registered} partitions, but this worker serves "
                f"{served}: jobs in {idle} are not served here")
    return (f"logical queue {logical!r} is registered with {registered} partitions, but this worker serves "
            f"{served}: producers using the registered count never write to the extra partitions")


async def check_widths(store: Any, plan: Any) -> dict[str, int]:
    """Record new widths, warn about mismatches; ``{logical: registered width}`` of the differing ones."""
    differing: dict[str, int] = {}
    registered = await store.registered_partitions()
    for logical, width in sorted(served_widths(plan).items()):
        recorded = registered.get(logical)
        if recorded is None and width > 1:
            recorded, _ = await store.register_partitions(logical, width)
        if recorded is not None and recorded != width:
            differing[logical] = recorded
            log.warning(mismatch_text(logical, recorded, width),
                        extra={"logical_queue": logical, "registered_partitions": recorded, "served_partitions": width})
    return differing


def partition_names(logical: str, span: int) -> list[str]:
    return [logical if i == 0 else f"{logical}{PHYSICAL_QUEUE_SUFFIX}{i}" for i in range(span)]


class WidthFollower:
    """Grows the shared entries of a runtime with the partitions width changes add.

    ``units``: ``{logical queue: its shared entry's queue list}`` (mutated in
    place); ``add(unit, name)`` appends a queue for ``name`` to ``unit``.
    """

    def __init__(self, store: Any, units: dict[str, list[Any]], add: Callable[[list[Any], str], None]) -> None:
        self.store = store
        self.units = units
        self.add = add
        self.epochs: dict[str, int] = {}

    async def poll(self) -> list[str]:
        """Serve every partition that holds work; the names added."""
        if not self.units:
            return []
        spans = await self.store.partition_spans()
        added: list[str] = []
        for logical, unit in self.units.items():
            found = spans.get(logical)
            if found is None:
                continue
            _width, epoch, span = found
            if self.epochs.get(logical) == epoch:
                continue
            have = {q.name for q in unit}
            for name in partition_names(logical, span):
                if name not in have:
                    self.add(unit, name)
                    added.append(name)
            self.epochs[logical] = epoch
        if added:
            log.info("serving partitions added by a width change: %s", ", ".join(added),
                     extra={"queues": added})
        return added


def per_partition_groups(names: Iterable[str]) -> dict[str, list[str]]:
    """``{logical: its partitions}`` for queues served one entry per partition.

    A group is every partition ``0 .. k-1`` of a logical queue, each the name
    of its own entry (``partitions`` without ``shared_slots``, or
    ``queue_configs``); which of them are registered is the follower's to see.
    """
    found: dict[str, set[int]] = {}
    for name in names:
        logical, sep, index = name.rpartition(PHYSICAL_QUEUE_SUFFIX)
        if sep and index.isdigit() and str(int(index)) == index and int(index) > 0:
            found.setdefault(logical, set()).add(int(index))
        else:
            found.setdefault(name, set()).add(0)
    return {logical: partition_names(logical, len(parts)) for logical, parts in found.items()
            if parts == set(range(len(parts)))}
