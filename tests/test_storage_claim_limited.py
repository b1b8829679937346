"""claim_jobs_limited (baseline part 05_claim.sql): per-queue caps in one walk over the lanes.

The property: with a total that does not bind, each queue gets exactly the jobs
a claim of that queue alone, with its cap, would get (caps are independent and
lanes never wait on each other). Checked against the shared-cap claim_jobs on
the same rows, inside one transaction rolled back between the two.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awa.client import Client

QUEUES = ["qa", "qb", "qc", "qd"]

backlogs = st.lists(
    st.lists(st.integers(min_value=1, max_value=4), max_size=6),  # priorities of one queue's jobs
    min_size=len(QUEUES),
    max_size=len(QUEUES),
)
caps = st.lists(st.integers(min_value=0, max_value=5), min_size=len(QUEUES), max_size=len(QUEUES))


def _fill(url: str, backlog: list[list[int]]) -> None:
    with Client(url) as client:
        for queue, priorities in zip(QUEUES, backlog):
            for n, priority in enumerate(priorities):
                client.insert({"n": n}, kind="k", queue=queue, priority=priority)


def _claim_limited(conn: psycopg.Connection, queues, limits, total) -> list[tuple[str, int]]:
    rows = conn.execute(
        "SELECT queue, id FROM awa.claim_jobs_limited(%s::text[], %s::integer[], %s, NULL, '1 hour', NULL)",
        (queues, limits, total),
    ).fetchall()
    return [(q, i) for q, i in rows]


def _claim_one_by_one(conn: psycopg.Connection, queues, limits) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for queue, limit in zip(queues, limits):
        out += conn.execute(
            "SELECT queue, id FROM awa.claim_jobs(ARRAY[%s], %s, NULL, '1 hour', NULL)", (queue, limit)
        ).fetchall()
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(backlog=backlogs, limits=caps)
def test_each_queue_gets_what_a_claim_of_it_alone_would_get(database_factory, backlog, limits):
    url = database_factory(migrated=True)
    try:
        _fill(url, backlog)
        with psycopg.connect(url) as conn:
            together = _claim_limited(conn, QUEUES, limits, sum(limits))
            conn.rollback()
            alone = _claim_one_by_one(conn, QUEUES, limits)
            conn.rollback()
        assert sorted(together) == sorted(alone)
        for queue, cap, priorities in zip(QUEUES, limits, backlog):
            assert sum(1 for q, _ in together if q == queue) == min(cap, len(priorities))
    finally:
        database_factory.drop(url)


def test_the_total_caps_the_call_and_goes_to_the_most_urgent_lanes_first(database_url):
    _fill(database_url, [[4, 4], [1, 1, 1], [2], [3, 3]])
    with psycopg.connect(database_url) as conn:
        got = _claim_limited(conn, QUEUES, [2, 2, 2, 2], 3)
        # Priority 1 lane (qb) first, up to its cap of 2; then the priority 2 lane (qc).
        assert [q for q, _ in got] == ["qb", "qb", "qc"]
        conn.rollback()
        assert _claim_limited(conn, QUEUES, [2, 2, 2, 2], 0) == []
        assert _claim_limited(conn, QUEUES, [0, 0, 0, 0], 8) == []
        # A queue with a zero cap is passed over even when it is the most urgent.
        assert [q for q, _ in _claim_limited(conn, QUEUES, [1, 0, 0, 0], 8)] == ["qa"]


def test_limits_must_match_the_queues(database_url):
    with psycopg.connect(database_url) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="2 limits for 3 queues"):
            _claim_limited(conn, ["a", "b", "c"], [1, 1], 2)


def test_shared_cap_claim_jobs_is_the_limited_claim_with_equal_caps(database_url):
    # One lane per priority, so the lane order is fixed: qc (1), qa (2), qb (3).
    _fill(database_url, [[2, 2, 2], [3, 3], [1], []])
    with psycopg.connect(database_url) as conn:
        shared = conn.execute(
            "SELECT queue, id FROM awa.claim_jobs(%s::text[], 4, NULL, '1 hour', NULL)", (QUEUES,)
        ).fetchall()
        conn.rollback()
        limited = _claim_limited(conn, QUEUES, [4] * 4, 4)
    assert [q for q, _ in shared] == ["qc", "qa", "qa", "qa"]
    assert [tuple(r) for r in shared] == limited


def test_concurrent_first_claims_of_many_new_lanes_never_deadlock(database_url):
    # The first claim of a lane creates its claim head. Claimers walk lanes in
    # random order, so creating heads lane by lane during the walk let two
    # claimers each wait for the other's uncommitted head (a deadlock). Every
    # round uses new queues, so every lane is new; all claimers start together.
    import threading

    client = Client(database_url, max_connections=12)
    errors: list[BaseException] = []
    claimed: list[int] = []
    lock = threading.Lock()
    total = 0
    for round_no in range(6):
        queues = [f"r{round_no}_q{i}" for i in range(4)]
        for queue in queues:
            client.set_enqueue_shards(queue, 4)
            total += client.enqueue_many_copy(
                [{"i": i} for i in range(24)], kind="k", queue=queue, opts=[{"ordering_key": f"k{i}"} for i in range(24)]
            )
        barrier = threading.Barrier(6)

        def claimer() -> None:
            try:
                barrier.wait()
                for _ in range(40):
                    got = client.claim(queues, 12, limits=[3, 3, 3, 3])
                    with lock:
                        claimed.extend(j.id for j in got)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=claimer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    client.close()
    assert errors == []
    assert len(claimed) == len(set(claimed)) == total
