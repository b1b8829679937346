"""The grammar of queue names (pure).

A queue name is 1 to 200 ASCII letters, digits and ``_ - . :``. The suffix
``__p<N>`` is reserved for partitions: ``orders__p3`` always denotes
partition 3 of the logical queue ``orders``. So such a name is accepted only
when it reads back unambiguously as (base, N): N without leading zeros
between 1 and 32766 (partition 0 is the base name itself), and the base a
name without a partition suffix. A base name has at most 192 characters, so
the suffix of any partition (``__p32766``, 8 characters) still fits in 200.
"""

from __future__ import annotations

import re

MAX_QUEUE_NAME_LENGTH = 200  # the queues table's CHECK, and awa's limit
MAX_PARTITION_INDEX = 32766  # PartitionedQueue allows 32767 physical queues: 0 .. 32766
PARTITION_SUFFIX = "__p"
MAX_BASE_NAME_LENGTH = MAX_QUEUE_NAME_LENGTH - len(f"{PARTITION_SUFFIX}{MAX_PARTITION_INDEX}")  # 192

_ALLOWED = re.compile(r"[A-Za-z0-9_.:-]+\Z")
_SUFFIX = re.compile(r"__p([0-9]+)\Z")

GRAMMAR = "ASCII letters, digits, '_', '-', '.' and ':'"


def split_partition(name: str) -> tuple[str, int] | None:
    """``("orders", 3)`` for ``orders__p3``; None when ``name`` has no partition suffix."""
    m = _SUFFIX.search(name)
    if m is None or m.start() == 0:
        return None
    return name[: m.start()], int(m.group(1))


def queue_name_problem(name: object, *, allow_partition: bool = True) -> str | None:
    """Why ``name`` is not a valid queue name (the end of a sentence), or None.

    ``allow_partition=False``: ``name`` must be a base name (a logical queue,
    or a plain queue that may become partitioned), without a partition suffix.
    """
    if name.__class__ is not str:
        return f"must be a string, got {type(name).__name__}"
    assert isinstance(name, str)
    if not name:
        return "must not be empty"
    if len(name) > MAX_QUEUE_NAME_LENGTH:
        return f"must be at most {MAX_QUEUE_NAME_LENGTH} characters (got {len(name)})"
    if _ALLOWED.match(name) is None:
        return f"may contain only {GRAMMAR} (got {name!r})"
    m = _SUFFIX.search(name)
    if m is None or m.start() == 0:
        if len(name) > MAX_BASE_NAME_LENGTH:
            return (
                f"must be at most {MAX_BASE_NAME_LENGTH} characters, so that its partition names fit in "
                f"{MAX_QUEUE_NAME_LENGTH} (got {len(name)})"
            )
        return None
    digits = m.group(1)
    base = name[: m.start()]
    if not allow_partition:
        return f"must not end in '{PARTITION_SUFFIX}<N>', which is reserved for partitions (got {name!r})"
    if digits.startswith("0") or int(digits) > MAX_PARTITION_INDEX:
        return (
            f"ends in a reserved partition suffix, but '{PARTITION_SUFFIX}{digits}' is not a partition "
            f"(partitions are {PARTITION_SUFFIX}1 .. {PARTITION_SUFFIX}{MAX_PARTITION_INDEX}; partition 0 is "
            f"the base name itself) (got {name!r})"
        )
    inner = queue_name_problem(base, allow_partition=False)
    if inner is not None:
        return f"is partition {digits} of {base!r}, whose name {inner}"
    return None


def is_valid_queue_name(name: object) -> bool:
    return queue_name_problem(name) is None
