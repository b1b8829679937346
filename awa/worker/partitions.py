"""The partition counts a worker serves, checked against the registry.

A worker gets physical queue names (``queue_configs`` writes one entry per
partition; a ``shared_slots`` entry names its width). From the names the
runtime infers each logical queue's width: ``orders``, ``orders__p1`` ..
``orders__p3`` is 4. At start it records widths of 2 or more that nobody
recorded yet, and warns, naming both counts, when the recorded width differs:
jobs in partitions the worker does not serve would wait for ever.
"""

from __future__ import annotations

import logging
import re
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
