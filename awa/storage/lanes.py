"""Splitting a batch into lanes (no I/O).

A lane is (queue, priority, enqueue shard): keyed rows hash to their shard;
unkeyed rows of one (queue, priority) all take the rotor's next shard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from awa.routing.hashes import shard_for_ordering_key, shards_for_ordering_keys
from awa.storage.batch import Batch

Rotor = Callable[[str, int], int]


@dataclasses.dataclass(slots=True)
class Lane:
    queue: str
    shard: int
    rows: Sequence[int] | None  # ascending row indices (a list or a range); None = every row of the batch

    def count(self, n: int) -> int:
        return len(self.rows) if self.rows is not None else n


def route(batch: Batch, shard_counts: Mapping[str, int], rotor: Rotor) -> list[Lane]:
    """The lanes of ``batch``, sorted by (queue, shard); ``shard_counts`` has
    every queue the batch touches."""
    if batch.queues is None and batch.keys is None:
        shards = shard_counts[batch.queue]
        if shards <= 1:
            shard = 0  # one shard: what any key hashes to
        elif batch.key is not None:
            shard = shard_for_ordering_key(batch.key, shards)
        else:
            shard = rotor(batch.queue, shards)
        return [Lane(batch.queue, shard, None)]

    by_queue = {batch.queue: range(batch.n)} if batch.queues is None else group_rows(batch.queues)
    lanes: dict[tuple[str, int], Sequence[int]] = {}
    for q in sorted(by_queue):
        rows = by_queue[q]
        shards = shard_counts[q]
        if shards <= 1:
            lanes[(q, 0)] = rows  # one shard: keys do not matter here (one entry per queue)
            continue
        _route_rows(batch, q, rows, shards, rotor, lanes)
    out = []
    for (q, s), rows in sorted(lanes.items()):
        if type(rows) is list:
            rows.sort()  # keyed and unkeyed rows of one shard were appended apart
        out.append(Lane(q, s, rows))
    return out


def _route_rows(
    batch: Batch, q: str, rows: Sequence[int], shards: int, rotor: Rotor, lanes: dict[tuple[str, int], Any]
) -> None:
    """Add the rows of queue ``q`` (``shards`` > 1) to their lanes."""
    keys = batch.keys
    if keys is None:
        row_keys: list[bytes | None] = [batch.key] * len(rows) if batch.key is not None else []
    else:
        row_keys = [keys[i] for i in rows]
    if not row_keys:  # no keys at all: the rotor's shard for the whole group
        lanes.setdefault((q, rotor(q, shards)), []).extend(rows)
        return
    if None in row_keys:
        keyed = [i for i, k in zip(rows, row_keys) if k is not None]
        unkeyed = [i for i, k in zip(rows, row_keys) if k is None]
        key_list = [k for k in row_keys if k is not None]
    else:
        keyed, unkeyed, key_list = rows, [], row_keys  # type: ignore[assignment]
    if keyed:
        # Hash each distinct key once: keys usually repeat within a batch.
        distinct = list(dict.fromkeys(key_list))
        if len(distinct) < len(key_list):
            shard_of = dict(zip(distinct, shards_for_ordering_keys(distinct, shards)))
            row_shards: list[int] = list(map(shard_of.__getitem__, key_list))
        else:
            row_shards = shards_for_ordering_keys(key_list, shards)
        by_shard: dict[int, list[int]] = {}
        for i, s in zip(keyed, row_shards):
            group = by_shard.get(s)
            if group is None:
                by_shard[s] = [i]
            else:
                group.append(i)
        for s, group in by_shard.items():
            lanes.setdefault((q, s), []).extend(group)
    if unkeyed:
        lanes.setdefault((q, rotor(q, shards)), []).extend(unkeyed)


def group_rows(queues: list[str]) -> dict[str, Sequence[int]]:
    """Row indices of each queue, ascending (a ``range`` when they are evenly spaced).

    Round-robin routes (``route_by_indexes``, or ``route_by_index`` per job)
    repeat the partitions with period ``p`` (the number of names); one set and
    one list comparison, both C-level passes, recognise that and give each
    queue ``range(j, n, p)``, with no per-row Python work. Other columns
    (keyed routes) are grouped row by row.
    """
    n = len(queues)
    p = len(set(queues))
    if 1 < p < n and queues[p:] == queues[:-p]:
        # queues[i] == queues[i + p] everywhere, so the first p rows hold all p
        # names, each once: queue queues[j] sits exactly at rows j, j + p, ...
        return {q: range(j, n, p) for j, q in enumerate(queues[:p])}
    by_queue: dict[str, list[int]] = {}
    for i, q in enumerate(queues):
        rows = by_queue.get(q)
        if rows is None:
            by_queue[q] = [i]
        else:
            rows.append(i)
    return by_queue  # type: ignore[return-value]


def pick(values: Sequence[Any], rows: Sequence[int] | None) -> Sequence[Any]:
    """``values`` at ``rows`` (None: all of them), with C-level slicing or itemgetter."""
    if rows is None:
        return values
    if type(rows) is range:
        return values[rows.start : rows.stop : rows.step]  # type: ignore[index]
    if len(rows) == 1:
        return [values[rows[0]]]
    return itemgetter(*rows)(values)


def lane_counts(lanes: list[Lane], n: int) -> list[int]:
    return [lane.count(n) for lane in lanes]
