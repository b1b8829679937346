"""Per-key concurrency (15_key_concurrency.sql, ADR 0020) on real PostgreSQL.

The invariant is read from the database: per (policy, key), the running jobs
whose key is governed never outnumber the policy's max_in_flight.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest

from worker_support.helpers import T0, ManualClock
from awa.client import Client, JobState
from awa.errors import ValidationError


# Running jobs per (policy, key) above the authoritative limit: must be empty.
VIOLATIONS = """
SELECT p.name, k.key, count(*) AS running, p.max_in_flight
FROM awa.jobs AS j
JOIN awa.key_policies AS p ON p.name = awa.logical_queue(j.queue)
CROSS JOIN LATERAL (SELECT coalesce(j.concurrency_key,
                                    CASE WHEN p.from_ordering_key THEN j.ordering_key END) AS key) AS k
WHERE j.state = 'running' AND k.key IS NOT NULL
GROUP BY p.name, k.key, p.max_in_flight
HAVING count(*) > p.max_in_flight
"""


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def client(database_url, clock):
    with Client(database_url, clock=clock, jitter=lambda: 0.0) as c:
        yield c


def violations(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(VIOLATIONS).fetchall()


def grants(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT job_id, run_lease, policy, key FROM awa.key_grants() ORDER BY job_id").fetchall()


QUEUES = ["orders", "orders__p1"]


def test_one_key_one_at_a_time_across_partitions_and_lanes(client, database_url):
    client.create_key_policy("orders", 1)
    a = client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    client.insert({"n": 1}, kind="k", queue="orders__p1", concurrency_key="ada", priority=1)
    client.insert({"n": 2}, kind="k", queue="orders", concurrency_key="ada", priority=3)
    tom = client.insert({"n": 3}, kind="k", queue="orders__p1", concurrency_key="tom")
    got = client.claim(QUEUES, 10)
    ada = [j for j in got if j.id != tom.id]
    assert len(ada) == 1 and tom.id in {j.id for j in got}
    assert client.claim(QUEUES, 10) == []
    assert violations(database_url) == []
    assert client.complete(ada[0].id, ada[0].run_lease) is True
    [nxt] = client.claim(QUEUES, 10)
    assert nxt.id != ada[0].id and nxt.id != tom.id
    assert a.id in {ada[0].id, nxt.id} or True  # which one is the lanes' priority order
    assert len(grants(database_url)) == 2  # tom and the next ada


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_a_governed_claim_takes_no_more_than_its_limit(client, database_url, limit):
    """The admission takes at most what the claim has room for, in lane order,
    and the jobs it leaves are taken by the next claim, none twice."""
    client.create_key_policy("orders", 1)
    jobs = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key=f"k{n}") for n in range(6)]
    first = client.claim(["orders"], limit)
    assert [j.id for j in first] == [j.id for j in jobs[:limit]]
    rest = client.claim(["orders"], 10)
    assert [j.id for j in rest] == [j.id for j in jobs[limit:]]
    assert violations(database_url) == []


def test_ordering_key_is_the_key_when_the_policy_says_so(client, database_url):
    client.create_key_policy("orders", 1, from_ordering_key=True)
    client.insert_many_copy([{"n": i} for i in range(6)], kind="k", queue="orders",
                            opts=[{"queue": "orders", "ordering_key": "ada" if i % 2 else "tom"} for i in range(6)])
    first = client.claim(["orders"], 10)
    assert sorted(j.ordering_key for j in first) == [b"ada", b"tom"]
    assert client.claim(["orders"], 10) == []
    for j in first:
        client.complete(j.id, j.run_lease)
    assert sorted(j.ordering_key for j in client.claim(["orders"], 10)) == [b"ada", b"tom"]
    assert violations(database_url) == []


def test_without_the_policy_keys_do_not_limit(client):
    for n in range(3):
        client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada")
    assert len(client.claim(["orders"], 10)) == 3


@pytest.mark.parametrize("end", ["complete", "retry", "snooze", "fail", "cancel", "admin_cancel", "rescue"])
def test_every_end_of_an_attempt_releases_and_the_key_stays(client, clock, database_url, end):
    client.create_key_policy("orders", 1)
    client.set_queue_dlq("orders", True)
    first = client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    second = client.insert({"n": 1}, kind="k", queue="orders", concurrency_key="ada")
    [j] = client.claim(["orders"], 10)
    assert j.id == first.id and client.claim(["orders"], 10) == []
    if end == "complete":
        client.complete(j.id, j.run_lease)
    elif end == "retry":
        client.retry(j.id, j.run_lease, after_seconds=0)
    elif end == "snooze":
        client.snooze(j.id, j.run_lease, 0)
    elif end == "fail":
        client.fail(j.id, j.run_lease, "boom")  # dead-lettered
    elif end == "cancel":
        client.cancel(j.id, j.run_lease)
    elif end == "admin_cancel":
        client.cancel_job(j.id)
    else:
        clock.advance(3600)
        client.heartbeat(second.id, 0)  # nothing: second is not running
        assert [r[0] for r in client.rescue_expired(heartbeat_timeout=60)] == [j.id]
    assert grants(database_url) == []
    [nxt] = client.claim(["orders"], 10)
    assert nxt.id in {first.id, second.id}
    # Whatever came back keeps its key: one at a time still.
    assert client.claim(["orders"], 10) == []
    assert violations(database_url) == []
    if end == "fail":
        client.complete(nxt.id, nxt.run_lease)
        back = client.retry_from_dlq(first.id)
        assert back.state is JobState.AVAILABLE
        [again] = client.claim(["orders"], 10)
        assert again.id == first.id
        blocker = client.insert({"n": 2}, kind="k", queue="orders", concurrency_key="ada")
        assert client.claim(["orders"], 10) == [] and blocker.id
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT concurrency_key FROM awa.jobs WHERE id = %s", [first.id]).fetchone() == (
                b"ada",)


def _claim_in_open_transaction(url: str, queue: str) -> tuple[psycopg.Connection, list[int]]:
    conn = psycopg.connect(url)
    rows = conn.execute(
        "SELECT id FROM awa.claim_jobs(ARRAY[%s], 10, NULL, '1 hour', NULL)", [queue]).fetchall()
    return conn, [r[0] for r in rows]


def test_two_claimers_in_flight_at_once_cannot_both_take_a_key(client, database_url):
    """Claimer A has taken the key and not committed; B (another partition,
    so another claim head) must not see 0 in flight and take it too."""
    client.create_key_policy("orders", 1)
    client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    client.insert({"n": 1}, kind="k", queue="orders__p1", concurrency_key="ada")
    client.insert({"n": 2}, kind="k", queue="orders__p1", concurrency_key="tom")
    a, got_a = _claim_in_open_transaction(database_url, "orders")
    b, got_b = _claim_in_open_transaction(database_url, "orders__p1")
    try:
        assert len(got_a) == 1 and len(got_b) == 1  # B took only tom
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()
    assert violations(database_url) == []


def test_the_check_then_claim_defect_is_caught(client, database_url):
    """The same race with the per-key serialisation removed: both take ada."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION awa.key_try_lock(p_policy text, p_key bytea) RETURNS boolean "
                     "LANGUAGE sql AS 'SELECT true'")
    client.create_key_policy("orders", 1)
    client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    client.insert({"n": 1}, kind="k", queue="orders__p1", concurrency_key="ada")
    a, got_a = _claim_in_open_transaction(database_url, "orders")
    b, got_b = _claim_in_open_transaction(database_url, "orders__p1")
    a.commit()
    b.commit()
    a.close()
    b.close()
    assert len(got_a) == 1 and len(got_b) == 1
    assert len(violations(database_url)) == 1


def test_a_blocked_head_does_not_stall_other_keys_within_the_look_ahead(client, database_url):
    """A claim examines W = max(look_ahead, limit) lane numbers past the cursor."""
    client.create_key_policy("orders", 1, look_ahead=4)
    hot = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key="hot").id for n in range(3)]
    cold = client.insert({"n": 3}, kind="k", queue="orders", concurrency_key="cold")
    far = client.insert({"n": 4}, kind="k", queue="orders", concurrency_key="far")
    got = client.claim(["orders"], 3)
    # numbers 1..4: hot#1 and cold (behind two blocked hot jobs); far (5) is past the bound
    assert {j.id for j in got} == {hot[0], cold.id}
    # the cursor stopped before hot#2, so the window now reaches far
    assert [j.id for j in client.claim(["orders"], 3)] == [far.id]
    assert client.claim(["orders"], 3) == []
    first = next(j for j in got if j.id == hot[0])
    client.complete(first.id, first.run_lease)
    assert [j.id for j in client.claim(["orders"], 3)] == [hot[1]]
    with psycopg.connect(database_url) as conn:
        # lane accounting: exactly one available job (hot#3) is counted
        [(avail,)] = conn.execute(
            "SELECT e.next_seq - 1 - c.claim_seq - c.holes FROM awa.enqueue_heads e "
            "JOIN awa.claim_heads c USING (queue, priority, enqueue_shard)").fetchall()
    assert avail == 1
    assert violations(database_url) == []


def test_a_deep_hot_key_is_parked_and_runs_in_lane_order(client, database_url):
    """A saturated key's surplus leaves the window (ADR 0025): other keys behind
    more of its jobs than look_ahead still run, and its own jobs run in order."""
    client.create_key_policy("orders", 1, look_ahead=4)
    hot = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key="hot").id for n in range(5)]
    cold = client.insert({"n": 5}, kind="k", queue="orders", concurrency_key="cold")
    [j] = client.claim(["orders"], 2)  # numbers 1..4: hot#1 taken, hot#2..#4 parked
    assert j.id == hot[0]
    assert [x.id for x in client.claim(["orders"], 2)] == [cold.id]  # 5..6: hot#5 parked, cold
    order = [j.id]
    for _ in range(4):
        assert client.claim(["orders"], 2) == []  # the key is at its limit
        client.complete(j.id, j.run_lease)
        [j] = client.claim(["orders"], 2)
        order.append(j.id)
    assert order == hot
    with psycopg.connect(database_url) as conn:
        [(avail,)] = conn.execute(
            "SELECT e.next_seq - 1 - c.claim_seq - c.holes FROM awa.enqueue_heads e "
            "JOIN awa.claim_heads c USING (queue, priority, enqueue_shard)").fetchall()
        parked = conn.execute("SELECT count(*) FROM awa.key_parked").fetchone()[0]
    assert (avail, parked) == (0, 0)
    assert violations(database_url) == []


def test_more_saturated_keys_than_the_look_ahead_hold_the_lane(client):
    """The bound: W = max(look_ahead, limit) parked heads of saturated keys, then other keys wait."""
    client.create_key_policy("orders", 1, look_ahead=2)
    ids = {}
    for name in ("a0", "b0", "a1", "b1", "c0"):
        ids[name] = client.insert({"n": name}, kind="k", queue="orders", concurrency_key=name[0]).id
    first = {j.id: j for j in client.claim(["orders"], 2)}
    assert set(first) == {ids["a0"], ids["b0"]}
    assert client.claim(["orders"], 2) == []  # a1, b1 parked
    assert client.claim(["orders"], 2) == []  # two heads fill the window: c0 is not read
    a0 = first[ids["a0"]]
    client.complete(a0.id, a0.run_lease)
    assert [j.id for j in client.claim(["orders"], 2)] == [ids["a1"]]
    b0 = first[ids["b0"]]
    client.complete(b0.id, b0.run_lease)
    assert [j.id for j in client.claim(["orders"], 2)] == [ids["b1"], ids["c0"]]


def test_parked_jobs_of_a_dropped_policy_run_unkeyed(client, database_url):
    client.create_key_policy("orders", 1)
    jobs = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada").id for n in range(3)]
    assert [j.id for j in client.claim(["orders"], 3)] == jobs[:1]
    assert client.claim(["orders"], 3) == []  # jobs 2 and 3 parked
    client.drop_key_policy("orders")
    assert [j.id for j in client.claim(["orders"], 3)] == jobs[1:]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM awa.key_parked").fetchone()[0] == 0


def test_a_policy_dropped_and_created_again_finds_the_jobs_it_had_parked(client, database_url):
    """Dropping a policy forgets how far its claims had looked past the cursor
    (the claim head's key_frontier): else a new policy's claims would start
    past the jobs parked before, and pass them as holes."""
    client.create_key_policy("orders", 1)
    jobs = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada").id for n in range(3)]
    [first] = client.claim(["orders"], 3)
    assert first.id == jobs[0] and client.claim(["orders"], 3) == []  # jobs 2 and 3 parked
    client.drop_key_policy("orders")
    client.create_key_policy("orders", 1)  # grants the running first job again
    assert client.claim(["orders"], 3) == []  # parked again, behind it
    for expected in jobs[1:]:
        with psycopg.connect(database_url) as conn:
            running = conn.execute("SELECT id, run_lease FROM awa.jobs WHERE state = 'running'").fetchall()
        assert [client.complete(i, lease) for i, lease in running] == [True]
        assert [j.id for j in client.claim(["orders"], 3)] == [expected]


def test_unkeyed_jobs_of_a_governed_queue_run_freely(client):
    client.create_key_policy("orders", 1)
    for n in range(3):
        client.insert({"n": n}, kind="k", queue="orders")
    assert len(client.claim(["orders"], 10)) == 3


def _running_ada(client, limit: int, jobs: int) -> list:
    """A policy of ``limit`` on orders, ``jobs`` jobs of key ada, and the claimed ones."""
    client.create_key_policy("orders", limit)
    for n in range(jobs):
        client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada")
    running = client.claim(["orders"], 10)
    assert len(running) == limit
    return running


def test_lowering_waits_for_the_keys_to_drain_raising_applies_at_once(client, database_url):
    running = _running_ada(client, 3, 5)
    p = client.set_key_limit("orders", 1)
    assert (p.max_in_flight, p.pending_max, p.admits, p.most_in_flight) == (3, 1, 1, 3)
    assert violations(database_url) == []
    client.complete(running[0].id, running[0].run_lease)
    assert client.claim(["orders"], 10) == []  # admits under the pending limit already
    client.complete(running[1].id, running[1].run_lease)
    [p] = client.key_policies("orders")  # the last release promoted it
    assert (p.max_in_flight, p.pending_max) == (1, None)
    client.complete(running[2].id, running[2].run_lease)
    assert len(client.claim(["orders"], 10)) == 1
    assert client.set_key_limit("orders", 2).max_in_flight == 2
    assert len(client.claim(["orders"], 10)) == 1
    assert violations(database_url) == []


def test_a_policy_created_while_jobs_run_counts_them(client, database_url):
    for n in range(4):
        client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada")
    running = client.claim(["orders"], 2)
    p = client.create_key_policy("orders", 1)
    assert (p.max_in_flight, p.pending_max, p.in_flight) == (2, 1, 2)
    assert client.claim(["orders"], 10) == []
    for j in running:
        client.complete(j.id, j.run_lease)
    assert client.key_policies("orders")[0].max_in_flight == 1
    assert len(client.claim(["orders"], 10)) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_key_policy("orders", 0),
        lambda c: c.create_key_policy("orders", -1),
        lambda c: c.create_key_policy("orders", 1.5),
        lambda c: c.create_key_policy("orders", True),
        lambda c: c.create_key_policy("orders__p1", 1),
        lambda c: c.create_key_policy("orders", 1, look_ahead=0),
        lambda c: c.create_key_policy("orders", 1, from_ordering_key="yes"),
        lambda c: c.set_key_limit("orders", 0),
        lambda c: c.set_key_limit("unknown", 2),
        lambda c: c.drop_key_policy("unknown"),
        lambda c: c.insert({}, kind="k", queue="orders", concurrency_key=7),
        lambda c: c.insert({}, kind="k", queue="orders", concurrency_key="x" * 256),
        lambda c: c.insert({}, kind="k", queue="orders", concurrency_key=b""),
    ],
)
def test_bad_input_is_a_validation_error_and_changes_nothing(client, database_url, call):
    client.create_key_policy("orders", 2)
    before = client.key_policies()
    with pytest.raises(ValidationError):
        call(client)
    assert client.key_policies() == before
    assert client.list_jobs() == []


def test_copy_batches_carry_per_job_and_batch_concurrency_keys(client, database_url):
    client.create_key_policy("orders", 1)
    jobs = client.insert_many_copy(
        [{"n": i} for i in range(6)], kind="k", queue="orders",
        opts=[{"queue": QUEUES[i % 2], "concurrency_key": "ada" if i < 4 else "tom"} for i in range(6)])
    with psycopg.connect(database_url) as conn:
        stored = dict(conn.execute("SELECT id, concurrency_key FROM awa.jobs").fetchall())
    assert [stored[j.id] for j in jobs] == [b"ada"] * 4 + [b"tom"] * 2
    assert len(client.claim(QUEUES, 10)) == 2  # one ada, one tom, over both partitions
    n = client.enqueue_many_copy([{"n": i} for i in range(3)], kind="k", queue="orders__p1",
                                 concurrency_key="eve", opts=[None, {"concurrency_key": "bob"}, None])
    assert n == 3
    assert len(client.claim(QUEUES, 10)) == 2  # one eve, one bob
    assert violations(database_url) == []


@pytest.mark.parametrize("bad", [7, "x" * 256, b""])
def test_a_bad_key_in_a_batch_inserts_nothing(client, bad):
    with pytest.raises(ValidationError):
        client.insert_many_copy([{}, {}], kind="k", queue="orders",
                                opts=[{"concurrency_key": "ok"}, {"concurrency_key": bad}])
    with pytest.raises(ValidationError):
        client.enqueue_many_copy([{}], kind="k", queue="orders", concurrency_key=bad)
    assert client.list_jobs() == []


def test_jobs_carry_their_concurrency_key(client):
    client.create_key_policy("orders", 1)
    one = client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    plain = client.insert({"n": 1}, kind="k", queue="orders", ordering_key="tom")
    [copied] = client.insert_many_copy([{"n": 2}], kind="k", queue="orders", opts=[{"concurrency_key": "eve"}])
    assert (one.concurrency_key, plain.concurrency_key, copied.concurrency_key) == (b"ada", None, b"eve")
    claimed = {j.id: j.concurrency_key for j in client.claim(["orders"], 10)}
    assert claimed == {one.id: b"ada", plain.id: None, copied.id: b"eve"}
    assert client.get_job(one.id).concurrency_key == b"ada"


@pytest.mark.parametrize("end", ["complete", "complete_many", "cancel", "fail"])
def test_the_end_of_a_governed_attempt_wakes_its_queue_once(client, database_url, end):
    """A governed attempt's end notifies its queue's channel once per
    transaction: a batch completion of three is one notification. Completions
    notify from lease_batch, other ends from the release trigger (ADR 0036).
    An unkeyed queue's ends stay silent; the grants end with the rows' state,
    whatever granted_key the finished rows keep."""
    client.create_key_policy("orders", 1)
    for n in range(3):
        client.insert({"n": n}, kind="k", queue="orders", concurrency_key=f"k{n}")
    client.insert({"n": 9}, kind="k", queue="plain")
    running = client.claim(["orders", "plain"], 10)
    assert len(running) == 4 and len(grants(database_url)) == 3
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN awa_jobs")
        if end == "complete_many":
            assert client.complete_many([(j.id, j.run_lease) for j in running]) == [True] * 4
        else:
            for j in running:
                assert getattr(client, end)(j.id, j.run_lease)
        notes = [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]
    assert notes == ["orders"] * (1 if end == "complete_many" else 3)
    assert grants(database_url) == []


@pytest.mark.parametrize("end", ["complete", "cancel", "retry"])
def test_the_end_of_an_attempt_settles_a_pending_lower_limit(client, database_url, end):
    """Whatever ends the attempt that held a key above a pending lower limit
    promotes the limit: the completion statement or the release trigger (a
    batch completion: test_a_batch_completion_settles_a_pending_lower_limit)."""
    running = _running_ada(client, 2, 4)
    assert client.set_key_limit("orders", 1).pending_max == 1
    j = running[0]
    if end == "retry":
        assert client.retry(j.id, j.run_lease, after_seconds=3600)
    else:
        assert getattr(client, end)(j.id, j.run_lease)
    [p] = client.key_policies("orders")
    assert (p.max_in_flight, p.pending_max) == (1, None)


def test_a_batch_completion_settles_a_pending_lower_limit(client, database_url):
    running = _running_ada(client, 2, 4)
    assert client.set_key_limit("orders", 1).pending_max == 1
    assert client.complete_many([(running[0].id, running[0].run_lease)]) == [True]
    [p] = client.key_policies("orders")  # the batch's release promoted it
    assert (p.max_in_flight, p.pending_max) == (1, None)
    assert client.claim(["orders"], 10) == []  # ada still holds one grant, the limit is 1
    assert client.complete_many([(running[1].id, running[1].run_lease)]) == [True]
    assert len(client.claim(["orders"], 10)) == 1
    assert violations(database_url) == []


def test_a_release_takes_the_catalog_lock_only_when_a_pending_limit_is_ready(client, database_url):
    """The catalog lock held to commit holds up every claim: a release tries it
    only when a pending limit looks ready, not on every end while keys are
    still above the limit."""
    running = _running_ada(client, 3, 3)
    assert client.set_key_limit("orders", 1).pending_max == 1
    held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ExclusiveLock'"
            " AND pid = pg_backend_pid()")
    complete = "SELECT count(*) FROM awa.lease_batch(true, %s::bigint[], %s::bigint[], now())"
    with psycopg.connect(database_url) as conn:
        for j, ready in ((running[0], False), (running[1], True)):  # ada: 2 left, then 1
            assert conn.execute(complete, ([j.id], [j.run_lease])).fetchone()[0] == 1
            assert conn.execute(held).fetchone()[0] == (1 if ready else 0)
            conn.commit()
    [p] = client.key_policies("orders")
    assert (p.max_in_flight, p.pending_max) == (1, None)


def test_a_key_whose_parked_jobs_were_all_taken_is_not_held_back(client, database_url):
    """Once the claim has taken a key's last parked job, the key's new jobs are
    not behind anything: the same claim takes them if the key has room."""
    client.create_key_policy("orders", 1)
    first = client.insert({"n": 0}, kind="k", queue="orders", concurrency_key="ada")
    second = client.insert({"n": 1}, kind="k", queue="orders", concurrency_key="ada")
    assert [j.id for j in client.claim(["orders"], 10)] == [first.id]  # the second is parked
    client.set_key_limit("orders", 3)
    third = client.insert({"n": 2}, kind="k", queue="orders", concurrency_key="ada")
    assert [j.id for j in client.claim(["orders"], 10)] == [second.id, third.id]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM awa.key_parked").fetchone()[0] == 0
    assert violations(database_url) == []


def test_cancelling_a_parked_job_unparks_it(client, database_url):
    """An admin cancel of a parked job removes its row and moves the key's
    head to the next parked job (found by the deep key machine: cancelled heads
    stayed parked, and each claim dropped only one of them, coming back empty
    while a live job of the key waited behind them)."""
    client.create_key_policy("orders", 1)
    jobs = [client.insert({"n": n}, kind="k", queue="orders", concurrency_key="ada") for n in range(4)]
    [running] = client.claim(["orders"], 10)
    assert running.id == jobs[0].id
    parked = "SELECT job_id, head FROM awa.key_parked ORDER BY lane_seq"
    with psycopg.connect(database_url) as conn:
        assert conn.execute(parked).fetchall() == [(jobs[1].id, True), (jobs[2].id, False), (jobs[3].id, False)]
        client.cancel_job(jobs[1].id)
        client.cancel_job(jobs[2].id)
        assert conn.execute(parked).fetchall() == [(jobs[3].id, True)]
    assert client.complete(running.id, running.run_lease)
    assert [j.id for j in client.claim(["orders"], 10)] == [jobs[3].id]
    assert violations(database_url) == []


def test_a_key_with_jobs_still_parked_holds_its_new_jobs_back(client, database_url):
    """KeyLaneFifo past a parked row whose job is gone: the claim drops it and
    takes the next parked job, and the key's new job, though the key has room
    for it, waits behind the parked job still there. (The row stays stale
    only when the policy's from_ordering_key changed since parking: then the
    cancel computes no key for it.)"""
    client.create_key_policy("orders", 2, from_ordering_key=True)
    jobs = [client.insert({"n": n}, kind="k", queue="orders", ordering_key="a") for n in range(5)]
    running = client.claim(["orders"], 10)
    assert [j.id for j in running] == [jobs[0].id, jobs[1].id]  # the other three are parked
    client.create_key_policy("orders", 2, from_ordering_key=False)
    client.cancel_job(jobs[2].id)  # no key under the policy now: its parked row stays
    client.create_key_policy("orders", 2, from_ordering_key=True)
    for j in running:
        assert client.complete(j.id, j.run_lease)
    client.insert({"n": 5}, kind="k", queue="orders", ordering_key="a")
    assert [j.id for j in client.claim(["orders"], 10)] == [jobs[3].id]  # not the new one: jobs[4] waits
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT job_id, head FROM awa.key_parked ORDER BY lane_seq").fetchall()[0] == (
            jobs[4].id, True)
    assert violations(database_url) == []


@pytest.mark.parametrize("running_at_analyze", [0, 300])
def test_the_admission_count_probes_the_grant_index_per_key(client, database_url, running_at_analyze):
    """The admission counts a key's grants with one lookup in jobs_granted_key
    per key, whatever the table's statistics say. (Counted for all keys at
    once with = ANY, the generic plan made from statistics taken when no job
    was running scanned every running job of the schema through
    jobs_running_heartbeat, a regexp each: a cost that grew with the running
    jobs of every queue, 0.29 ms a call with 2,000 of them.)"""
    client.create_key_policy("orders", 1)
    client.insert_many_copy([{"n": i} for i in range(5000)], kind="k", queue="orders",
                            opts=[{"concurrency_key": f"key-{i % 1000}"} for i in range(5000)])
    for _ in range(4):  # finished jobs keep their granted key
        done = client.claim(["orders"], 1000)
        assert len(done) == 1000 and all(client.complete_many([(j.id, j.run_lease) for j in done]))
    assert len(client.claim(["orders"], running_at_analyze)) == running_at_analyze
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16")
        conn.execute("ANALYZE awa.jobs")
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN (GENERIC_PLAN, COSTS OFF) SELECT * FROM awa.key_admit($1::text, $2::int, $3::int, $4::bigint[], "
            "$5::bigint[], $6::bytea[], $7::bytea[], $8::bytea[])"))
    scans = [line.strip() for line in plan.splitlines() if " on jobs " in line]
    assert scans == ["->  Index Scan using jobs_granted_key on jobs j"], plan
    assert re.search(r"Index Cond: .*granted_key = [a-z]+\.k\)", plan), plan  # a probe by one key
