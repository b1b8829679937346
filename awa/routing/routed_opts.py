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

``BatchRouter`` builds them for ``PartitionedQueue`` without that copy and
check: every queue name it puts in a column comes from its own list of
queues, checked once when it is made, and every key from ``coerce_keys``.
The unchecked wrapping therefore stays inside this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

from awa.errors import ValidationError
from awa.routing.hashes import coerce_keys, int_argument, key_list


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


def _wrap(queues: list[str], keys: list[bytes] | None = None) -> RoutedOpts:
    """A RoutedOpts around lists built by BatchRouter: no copy, no check."""
    routed = RoutedOpts.__new__(RoutedOpts)
    routed._queues = queues
    routed._keys = keys
    return routed


def check_index(index: object) -> int:
    """A round-robin index: an int >= 0 (bool rejected), else ValidationError."""
    if index.__class__ is int and index >= 0:  # the common case, checked inline
        return index  # type: ignore[return-value]
    value = int_argument(index, "index")
    if value < 0:
        raise ValidationError("index must be >= 0")
    return value


# Exact key types that can be deduplicated and remembered before coercion (str
# and bytes never compare equal, so a str key and its UTF-8 bytes stay two
# entries: both route alike).
_HASHABLE_KEY_TYPES = frozenset((str, bytes))
#: By default a BatchRouter remembers up to this many keys of at most this length.
MEMO_KEYS = 16_384
MEMO_KEY_LENGTH = 128

_PartitionsForKeys = Callable[[list[bytes], int], list[int]]


class BatchRouter:
    """The batch routes of one list of physical queues, answered as RoutedOpts.

    ``partitions_for_keys(key_bytes, count)`` is the routing scheme's batch
    partition function; it is called with ``count >= 2`` and must return one
    index into ``queues`` per key.  Each distinct key is encoded and hashed
    once per call, and short str/bytes keys are remembered (at most
    ``memo_keys`` of at most ``memo_key_length`` items; the memo is restarted
    when full), since producers send the same keys batch after batch.  The
    memo is a cache only: it never changes an answer.
    """

    __slots__ = (
        "_queues", "_partitions_for_keys", "_memo_keys", "_memo_key_length", "_queue_of", "_bytes_of"
    )

    def __init__(
        self,
        queues: Iterable[str],
        partitions_for_keys: _PartitionsForKeys,
        *,
        memo_keys: int = MEMO_KEYS,
        memo_key_length: int = MEMO_KEY_LENGTH,
    ) -> None:
        queues = tuple(queues)
        if not queues or not set(map(type, queues)) <= {str} or not all(queues):
            raise ValidationError("BatchRouter queues must be a non-empty sequence of non-empty str")
        self._queues = queues
        self._partitions_for_keys = partitions_for_keys
        self._memo_keys = int_argument(memo_keys, "memo_keys")
        self._memo_key_length = int_argument(memo_key_length, "memo_key_length")
        self._queue_of: dict[Any, str] = {}  # key -> physical queue
        self._bytes_of: dict[Any, bytes] = {}  # key -> key bytes

    def route_keys(self, keys: Iterable[object]) -> RoutedOpts:
        """``{"queue": ..., "ordering_key": <bytes>}`` of every key, in order, as columns."""
        items = key_list(keys)
        if not set(map(type, items)) <= _HASHABLE_KEY_TYPES:
            # bytearray, memoryview, ...: coerce (and check) first.
            queue_col, key_col, _, _ = self._route_distinct(coerce_keys(items))
            return _wrap(queue_col, key_col)
        queue_of, bytes_of = self._queue_of, self._bytes_of
        try:  # every key remembered (the usual case); KeyError also when another thread restarted the memo
            return _wrap(list(map(queue_of.__getitem__, items)), list(map(bytes_of.__getitem__, items)))
        except KeyError:
            pass
        queue_col, key_col, distinct, routed = self._route_distinct(items)
        self._remember(distinct, *routed)
        return _wrap(queue_col, key_col)

    def _route_distinct(
        self, items: list[Any]
    ) -> tuple[list[str], list[bytes], list[Any], tuple[list[str], list[bytes]]]:
        """Route every item, hashing each distinct one once.

        Returns the queue and key columns, the distinct items, and their
        (queues, key bytes) in the same order.
        """
        queues = self._queues
        distinct = list(dict.fromkeys(items))
        data = coerce_keys(distinct)
        if len(queues) == 1:
            targets = [queues[0]] * len(distinct)
        else:
            targets = list(map(queues.__getitem__, self._partitions_for_keys(data, len(queues))))
            if len(targets) != len(data):
                raise ValidationError("partitions_for_keys must return one partition per key")
        if len(distinct) == len(items):
            return targets, data, distinct, (targets, data)
        queue_of = dict(zip(distinct, targets))
        bytes_of = dict(zip(distinct, data))
        return (
            list(map(queue_of.__getitem__, items)),
            list(map(bytes_of.__getitem__, items)),
            distinct,
            (targets, data),
        )

    def _remember(self, distinct: list[Any], targets: list[str], data: list[bytes]) -> None:
        queue_of, bytes_of = self._queue_of, self._bytes_of
        short = [i for i, k in enumerate(distinct) if len(k) <= self._memo_key_length]
        if len(queue_of) + len(short) > self._memo_keys:
            queue_of.clear()
            bytes_of.clear()
        if len(short) <= self._memo_keys:
            for i in short:
                bytes_of[distinct[i]] = data[i]
                queue_of[distinct[i]] = targets[i]

    def remembered(self) -> dict[Any, tuple[str, bytes]]:
        """A copy of the memo, ``{key: (queue, key bytes)}`` (for tests and diagnostics)."""
        bytes_of = self._bytes_of
        return {key: (queue, bytes_of[key]) for key, queue in list(self._queue_of.items()) if key in bytes_of}

    def route_indexes(self, indexes: Iterable[int]) -> RoutedOpts:
        """``{"queue": ...}`` of every round-robin index, in order, as a column."""
        return _wrap(self.queues_for_indexes(indexes))

    def queues_for_indexes(self, indexes: Iterable[int]) -> list[str]:
        """Physical queue ``index % len(queues)`` of every index, in order."""
        queues = self._queues
        n = len(queues)
        if type(indexes) is range and indexes.step == 1:
            # A run of consecutive indexes (a producer's chunk): the partition
            # names rotated to the first one, repeated, cut to length. No
            # per-index work; only the first index can be negative.
            if len(indexes) == 0:
                return []
            first = check_index(indexes.start) % n
            cycle = list(queues[first:] + queues[:first])
            return (cycle * (len(indexes) // n + 1))[: len(indexes)]
        # Plain non-negative ints take the inline test; anything else is checked
        # (and worded) by check_index.
        return [queues[(i if type(i) is int and i >= 0 else check_index(i)) % n] for i in indexes]


__all__ = ["RoutedOpts", "BatchRouter", "check_index", "MEMO_KEYS", "MEMO_KEY_LENGTH"]
