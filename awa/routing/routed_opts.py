"""``RoutedOpts``: per-job insert opts kept as columns.

``PartitionedQueue.route_by_keys`` (and ``route_by_indexes``) answer a whole
batch at once. Building one dict per job only for ``enqueue_many_copy`` to
take every dict apart again costs more than the routing itself, so the batch
routes return this read-only sequence instead: it holds the physical queue
names and the ordering keys as two lists, and gives out a fresh dict per item
on access. It compares equal to the list of dicts it stands for, and the
client reads the columns directly (``awa/client/_batch.py:parse_opts``).

Read-only on purpose: the constructor copies and type-checks both columns
once, and the client then reads them without a per-job check (it still
validates each distinct queue name), which is only sound if nobody can change
them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

from awa.errors import ValidationError


class RoutedOpts(Sequence):
    """Read-only list of ``{"queue": ...}`` or ``{"queue": ..., "ordering_key": ...}`` dicts."""

    __slots__ = ("_queues", "_keys")

    def __init__(self, queues: Iterable[str], keys: Iterable[bytes] | None = None) -> None:
        # Own copies, type-checked in C-level passes: the client relies on both.
        queues = list(queues)
        if not set(map(type, queues)) <= {str}:
            raise ValidationError("RoutedOpts queues must be strings")
        if keys is not None:
            keys = list(keys)
            if not set(map(type, keys)) <= {bytes}:
                raise ValidationError("RoutedOpts ordering keys must be bytes")
            if len(keys) != len(queues):
                raise ValidationError("RoutedOpts queues and keys must have the same length")
        self._queues = queues
        self._keys = keys

    @classmethod
    def _own(cls, queues: list[str], keys: list[bytes] | None = None) -> RoutedOpts:
        """Wrap lists the caller just built and hands over (PartitionedQueue's batch
        routes): no copy, no check."""
        self = cls.__new__(cls)
        self._queues = queues
        self._keys = keys
        return self

    @property
    def queues(self) -> list[str]:
        """The physical queue of every job (a copy)."""
        return list(self._queues)

    @property
    def keys(self) -> list[bytes] | None:
        """The ordering key of every job (a copy), or None for unkeyed routes."""
        return None if self._keys is None else list(self._keys)

    def columns(self) -> tuple[list[str], list[bytes] | None]:
        """The two columns themselves, not copied: for the client's enqueue path only."""
        return self._queues, self._keys

    def __len__(self) -> int:
        return len(self._queues)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> RoutedOpts: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | RoutedOpts:
        if isinstance(index, slice):
            return RoutedOpts(self._queues[index], None if self._keys is None else self._keys[index])
        if self._keys is None:
            return {"queue": self._queues[index]}
        return {"queue": self._queues[index], "ordering_key": self._keys[index]}

    def __iter__(self):  # type: ignore[override]
        if self._keys is None:
            return ({"queue": q} for q in self._queues)
        return ({"queue": q, "ordering_key": k} for q, k in zip(self._queues, self._keys))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RoutedOpts):
            return self._queues == other._queues and self._keys == other._keys
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: object) -> list[dict[str, Any]]:
        return list(self) + list(other)  # type: ignore[call-overload]

    def __radd__(self, other: object) -> list[dict[str, Any]]:
        return list(other) + list(self)  # type: ignore[call-overload]

    def __repr__(self) -> str:
        return f"RoutedOpts({list(self)!r})"
