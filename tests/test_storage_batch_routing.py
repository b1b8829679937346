"""Grouping a batch's rows by queue (pure functions of awa/storage/lanes.py), and the
round-robin fast path end to end on real PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from awa.client import Client
from awa.storage import lanes
from awa.storage.batch import Batch, prepare
from awa.routing import PartitionedQueue

NAMES = ("q", "q__p1", "q__p2", "q__p3", "other")


def naive_groups(queues: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, q in enumerate(queues):
        out.setdefault(q, []).append(i)
    return out


def as_lists(groups) -> dict[str, list[int]]:
    return {q: list(rows) for q, rows in groups.items()}


# Columns that are round robin, round robin with one row changed, or arbitrary.
@st.composite
def queue_columns(draw) -> list[str]:
    period = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5))
    n = draw(st.integers(min_value=1, max_value=40))
    column = (period * (n // len(period) + 1))[:n]
    shape = draw(st.sampled_from(("periodic", "one changed", "arbitrary")))
    if shape == "one changed":
        column[draw(st.integers(0, n - 1))] = draw(st.sampled_from(NAMES))
    elif shape == "arbitrary":
        column = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=40))
    return column


@settings(max_examples=400, deadline=None)
@given(queue_columns())
def test_group_rows_equals_the_row_by_row_grouping(queues):
    groups = lanes.group_rows(queues)
    assert as_lists(groups) == naive_groups(queues)
    assert list(groups) == list(naive_groups(queues))  # first-seen order kept


def test_round_robin_columns_take_the_range_path():
    pq = PartitionedQueue("q", 4)
    groups = lanes.group_rows(pq.route_by_indexes(range(7, 2007)).columns()[0])
    assert all(type(rows) is range for rows in groups.values())
    assert as_lists(groups) == naive_groups(pq.route_by_indexes(range(7, 2007)).columns()[0])
    # One row sent elsewhere: no longer periodic, grouped row by row (and still right).
    column = pq.route_by_indexes(range(2000)).columns()[0]
    column[1999] = "q"
    groups = lanes.group_rows(column)
    assert all(type(rows) is list for rows in groups.values())
    assert as_lists(groups) == naive_groups(column)


def _lanes(batch: Batch, shards: dict[str, int]) -> list[tuple[str, int, list[int]]]:
    routed = lanes.route(batch, shards, lambda q, s: 0)
    return [(lane.queue, lane.shard, list(lane.rows) if lane.rows is not None else None) for lane in routed]


@dataclass
class Row:
    n: int


@settings(max_examples=200, deadline=None)
@given(queue_columns(), st.booleans(), st.integers(min_value=1, max_value=4))
def test_route_lanes_hold_every_row_once_in_ascending_order(queues, keyed, shard_count):
    jobs = [Row(i) for i in range(len(queues))]
    opts = [
        {"queue": q, "ordering_key": f"k{i % 3}"} if keyed else {"queue": q} for i, q in enumerate(queues)
    ]
    batch = prepare(
        jobs, kind="demo", queue="q", priority=2, max_attempts=25, tags=None,
        metadata=None, run_at=None, ordering_key=None, opts=opts,
    )
    shards = {q: shard_count for q in NAMES}
    routed = _lanes(batch, shards)
    if routed[0][2] is None:  # the one-lane path: one queue, no per-row keys
        assert len(routed) == 1 and set(queues) == {routed[0][0]} and not keyed
        return
    seen = sorted(i for _, _, rows in routed for i in rows)
    assert seen == list(range(len(queues)))
    for q, _, rows in routed:
        assert rows == sorted(rows) and all(queues[i] == q for i in rows)
    assert [(q, s) for q, s, _ in routed] == sorted((q, s) for q, s, _ in routed)


def test_round_robin_batches_store_lane_numbers_in_row_order(database_url):
    pq = PartitionedQueue("grouping_rr", 4)
    with Client(database_url) as client:
        for opts in (pq.route_by_indexes(range(10)), [pq.route_by_index(i) for i in range(10, 22)]):
            n = len(opts)
            first = 0 if n == 10 else 10
            client.enqueue_many_copy([Row(first + i) for i in range(n)], kind="demo", queue="grouping_rr", opts=opts)
        by_queue: dict[str, list[int]] = {}
        for job in client.list_jobs(limit=100):
            by_queue.setdefault(job.queue, []).append((job.lane_seq, job.args["n"]))
    assert sorted(by_queue) == sorted(pq.physical_queues)
    for j, q in enumerate(pq.physical_queues):
        stored = sorted(by_queue[q])
        # FIFO per lane: lane numbers 1, 2, ... follow the rows' order, and job i sits on partition i % 4.
        assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
        assert [n for _, n in stored] == [i for i in range(22) if i % 4 == j]
