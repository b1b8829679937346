"""Job lifecycle with run leases, driven by an explicit clock (no sleeping)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import psycopg
import pytest

from worker_support.helpers import T0, ManualClock
from awa.client import AsyncClient, Client, JobState, backoff_seconds
from awa.errors import ValidationError



@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def client(database_url, clock):
    with Client(database_url, clock=clock, jitter=lambda: 0.25) as c:
        yield c


def _row(conn, job_id):
    conn.rollback()
    return conn.execute("SELECT * FROM awa.jobs WHERE id = %s", [job_id]).fetchone()


def test_stale_completion_changes_no_row(client, conn, clock):
    job = client.insert({"a": 1}, kind="k")
    [first] = client.claim(["default"], 1, deadline_ms=1000)
    clock.advance(5)
    rescued = client.rescue_expired()
    assert rescued == [(job.id, first.run_lease, "retryable")]
    clock.advance(10)
    assert client.promote_due() == 1
    [second] = client.claim(["default"], 1)
    assert second.run_lease == first.run_lease + 1
    before = _row(conn, job.id)
    for stale_call in (
        lambda: client.complete(job.id, first.run_lease),
        lambda: client.fail(job.id, first.run_lease, "boom"),
        lambda: client.retry(job.id, first.run_lease),
        lambda: client.snooze(job.id, first.run_lease, 5),
        lambda: client.cancel(job.id, first.run_lease),
        lambda: client.heartbeat(job.id, first.run_lease, {"p": 1}),
    ):
        assert stale_call() is False
    assert client.complete_many([(job.id, first.run_lease)]) == [False]
    assert client.heartbeat_many([(job.id, first.run_lease)]) == [False]
    assert _row(conn, job.id) == before
    assert client.complete(job.id, second.run_lease) is True
    assert client.get_job(job.id).state is JobState.COMPLETED


def test_every_claim_bumps_the_lease_and_attempt(client, clock):
    job = client.insert({"a": 1}, kind="k")
    leases = []
    for n in range(1, 4):
        [j] = client.claim(["default"], 1)
        assert (j.attempt, j.run_lease) == (n, n)
        leases.append(j.run_lease)
        assert client.retry(j.id, j.run_lease, after_seconds=0)
    assert leases == [1, 2, 3]


def test_retry_backoff_is_exponential_with_jitter_hook(client, clock):
    job = client.insert({"a": 1}, kind="k", max_attempts=5)
    for attempt in (1, 2, 3):
        [j] = client.claim(["default"], 1)
        assert client.retry(j.id, j.run_lease, error="oops") is True
        stored = client.get_job(job.id)
        assert stored.state is JobState.RETRYABLE
        assert stored.run_at == clock.now + dt.timedelta(seconds=backoff_seconds(attempt, 0.25))
        assert stored.errors[-1]["error"] == "oops" and stored.errors[-1]["attempt"] == attempt
        clock.advance(backoff_seconds(attempt, 0.25) - 0.001)
        assert client.promote_due() == 0  # not due a millisecond early
        clock.advance(0.001)
        assert client.promote_due() == 1
    assert backoff_seconds(30, 0.5) == 86_400.0


def test_retry_after_max_attempts_fails(client):
    job = client.insert({"a": 1}, kind="k", max_attempts=2)
    [j] = client.claim(["default"], 1)
    assert client.retry(j.id, j.run_lease, after_seconds=0)
    [j] = client.claim(["default"], 1)
    assert j.attempt == 2
    assert client.retry(j.id, j.run_lease, after_seconds=0, error=RuntimeError("last")) is True
    stored = client.get_job(job.id)
    assert stored.state is JobState.FAILED and stored.finalized_at is not None
    assert stored.errors[-1]["error"] == "RuntimeError: last"


def test_failed_job_moves_to_dlq_when_enabled_and_comes_back_to_its_lane(client, clock):
    client.set_enqueue_shards("mail", 4)
    client.set_queue_dlq("mail", True)
    job = client.insert({"a": 1}, kind="k", queue="mail", ordering_key="user-1", max_attempts=1)
    [j] = client.claim(["mail"], 1)
    assert client.retry(j.id, j.run_lease, error="nope") is True  # out of attempts
    assert client.find_job(job.id) is None
    entry = client.get_dlq_job(job.id)
    assert entry.reason == "max_attempts_exhausted" and entry.job.state is JobState.FAILED
    assert client.dlq_depth() == 1 and client.dlq_depth(queue="other") == 0
    assert [e.job.id for e in client.list_dlq(queue="mail")] == [job.id]

    back = client.retry_from_dlq(job.id)
    assert back.state is JobState.AVAILABLE and back.attempt == 0
    assert back.lane == job.lane and back.ordering_key == b"user-1"
    assert back.lane_seq == j.lane_seq + 1
    assert back.run_lease == j.run_lease  # leases stay monotonic per job id
    assert client.dlq_depth() == 0
    [again] = client.claim(["mail"], 1)
    assert again.id == job.id and again.run_lease == j.run_lease + 1
    assert client.complete(j.id, j.run_lease) is False  # the pre-DLQ attempt stays stale
    assert client.fail(again.id, again.run_lease, "terminal") is True
    assert client.get_dlq_job(job.id).reason == "terminal_error"
    assert client.purge_dlq_job(job.id) is True and client.get_dlq_job(job.id) is None
    assert client.retry_from_dlq(job.id) is None


def test_retry_from_dlq_to_another_queue_and_scheduled(client, clock):
    client.set_queue_dlq("a", True)
    job = client.insert({"a": 1}, kind="k", queue="a", ordering_key="z")
    [j] = client.claim(["a"], 1)
    client.fail(j.id, j.run_lease, "x")
    moved = client.retry_from_dlq(job.id, queue="b", priority=1, run_at=clock.now + dt.timedelta(seconds=30))
    assert (moved.queue, moved.priority, moved.state, moved.lane_seq) == ("b", 1, JobState.SCHEDULED, None)
    clock.advance(30)
    assert client.promote_due() == 1
    assert [x.id for x in client.claim(["b"], 1)] == [job.id]


def test_fail_without_dlq_stays_failed_and_can_be_moved_manually(client):
    job = client.insert({"a": 1}, kind="k")
    [j] = client.claim(["default"], 1)
    assert client.fail(j.id, j.run_lease, ValueError("bad input")) is True
    stored = client.get_job(job.id)
    assert stored.state is JobState.FAILED and stored.errors[0]["error"] == "ValueError: bad input"
    entry = client.move_failed_to_dlq(job.id, "operator")  # awa-pg: the DlqEntry, or None
    assert entry == client.get_dlq_job(job.id) and entry.reason == "operator" and entry.job.id == job.id
    assert client.move_failed_to_dlq(job.id, "again") is None


def test_snooze_does_not_use_an_attempt(client, clock):
    job = client.insert({"a": 1}, kind="k")
    [j] = client.claim(["default"], 1)
    assert client.snooze(j.id, j.run_lease, 60) is True
    stored = client.get_job(job.id)
    assert stored.state is JobState.SCHEDULED and stored.attempt == 0
    assert stored.run_at == clock.now + dt.timedelta(seconds=60)
    clock.advance(60)
    assert client.promote_due() == 1
    [j2] = client.claim(["default"], 1)
    assert j2.attempt == 1 and j2.run_lease == 2
    with pytest.raises(ValidationError):
        client.snooze(j2.id, j2.run_lease, float("nan"))


def test_cancel_with_lease_and_admin_cancel(client):
    a, b, c = client.insert_many_copy([{"i": i} for i in range(3)], kind="k")
    [ja] = client.claim(["default"], 1)
    assert client.cancel(ja.id, ja.run_lease) is True
    assert client.get_job(a.id).state is JobState.CANCELLED
    assert client.cancel_job(b.id).state is JobState.CANCELLED  # available
    [jc] = client.claim(["default"], 1)
    assert jc.id == c.id
    cancelled = client.cancel_job(c.id)  # running, no lease needed
    assert cancelled.state is JobState.CANCELLED
    assert client.complete(jc.id, jc.run_lease) is False
    assert client.cancel_job(c.id) is None  # already terminal
    assert client.cancel_job(999_999) is None


def test_heartbeat_and_rescue(client, clock):
    jobs = client.insert_many_copy([{"i": i} for i in range(3)], kind="k", max_attempts=1)
    claimed = client.claim(["default"], 3)
    clock.advance(60)
    assert client.heartbeat(claimed[0].id, claimed[0].run_lease, progress={"pct": 50}) is True
    assert client.heartbeat_many([(claimed[1].id, claimed[1].run_lease)]) == [True]
    clock.advance(45)
    # Heartbeats at t+60 are 45 s old; the third job's is 105 s old.
    out = client.rescue_expired(heartbeat_timeout=90)
    assert out == [(claimed[2].id, claimed[2].run_lease, "failed")]  # max_attempts=1
    assert client.get_job(jobs[0].id).progress == {"pct": 50}
    assert client.get_job(jobs[2].id).errors[-1]["error"] == "heartbeat expired"
    assert client.rescue_expired(heartbeat_timeout=90) == []


def test_rescue_happens_once_under_concurrency(database_url, clock):
    with Client(database_url, clock=clock) as setup:
        setup.enqueue_many_copy([{"i": i} for i in range(40)], kind="k")
        setup.claim(["default"], 40)
    clock.advance(1000)
    results: list = []
    lock = threading.Lock()

    def rescuer():
        with Client(database_url, clock=clock) as c:
            got = c.rescue_expired(heartbeat_timeout=10, limit=7)
            while got:
                with lock:
                    results.extend(got)
                got = c.rescue_expired(heartbeat_timeout=10, limit=7)

    threads = [threading.Thread(target=rescuer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r[0] for r in results]
    assert len(ids) == len(set(ids)) == 40
    assert {r[2] for r in results} == {"retryable"}


def test_deadline_rescue(client, clock):
    job = client.insert({"a": 1}, kind="k")
    [j] = client.claim(["default"], 1, deadline_ms=2500)
    assert j.deadline_at == clock.now + dt.timedelta(milliseconds=2500)
    clock.advance(2)
    assert client.heartbeat(j.id, j.run_lease) is True
    assert client.rescue_expired() == []
    clock.advance(1)
    assert client.rescue_expired() == [(job.id, j.run_lease, "retryable")]
    assert client.get_job(job.id).errors[-1]["error"] == "deadline exceeded"


def test_complete_many_reports_per_item(client):
    jobs = client.insert_many_copy([{"i": i} for i in range(4)], kind="k")
    claimed = client.claim(["default"], 4)
    items = [(j.id, j.run_lease) for j in claimed]
    items[1] = (items[1][0], 999)
    assert client.complete_many(items) == [True, False, True, True]
    assert [client.get_job(j.id).state for j in jobs] == [
        JobState.COMPLETED, JobState.RUNNING, JobState.COMPLETED, JobState.COMPLETED,
    ]
    assert client.complete_many([]) == []


def test_claim_validation(client):
    with pytest.raises(ValidationError):
        client.claim(["default"], -1)
    with pytest.raises(ValidationError):
        client.claim(["default"], 1, deadline_ms=0)
    with pytest.raises(ValidationError):
        client.claim([""], 1)
    assert client.claim(["default"], 0) == []


def test_queue_stats_counts_and_lanes(client, clock):
    client.set_enqueue_shards("st", 2)
    client.enqueue_many_copy([{"i": i} for i in range(3)], kind="k", queue="st")
    client.enqueue_many_copy([{"i": i} for i in range(2)], kind="k", queue="st")
    client.enqueue_many_copy([{"i": 1}], kind="k", queue="st", run_at=clock.now + dt.timedelta(hours=1))
    clock.advance(30)
    claimed = client.claim(["st"], 2)
    client.complete(claimed[0].id, claimed[0].run_lease)
    client.retry(claimed[1].id, claimed[1].run_lease, after_seconds=100)
    [stat] = client.queue_stats("st")
    assert (stat.available, stat.scheduled, stat.running, stat.retryable, stat.completed) == (3, 1, 0, 1, 1)
    assert stat.enqueue_shards == 2 and stat.paused is False and stat.total_queued == 5
    assert stat.oldest_available_age == pytest.approx(30.0)
    initial = {0: 3, 1: 2}  # the rotor gave the first batch shard 0, the second shard 1
    for j in claimed:
        initial[j.enqueue_shard] -= 1
    assert sorted((l.enqueue_shard, l.available) for l in stat.lanes) == sorted(initial.items())
    assert all(l.next_seq > l.claim_seq for l in stat.lanes)
    assert {s.queue for s in client.queue_stats()} == {"st"}


def test_list_jobs_filters(client):
    client.insert_many_copy([{"i": 1}, {"i": 2}], kind="alpha", queue="l1")
    client.insert({"i": 3}, kind="beta", queue="l2")
    client.claim(["l2"], 1)
    assert {j.kind for j in client.list_jobs(kind="alpha")} == {"alpha"}
    assert [j.queue for j in client.list_jobs(state="running")] == ["l2"]
    assert len(client.list_jobs(queue="l1", limit=1)) == 1
    assert len(client.list_jobs(state=JobState.AVAILABLE)) == 2
    with pytest.raises(ValidationError):
        client.list_jobs(state="exploded")


def test_async_lifecycle_same_semantics(database_url, clock):
    async def main():
        async with AsyncClient(database_url, clock=clock, jitter=lambda: 0.0) as c:
            job = await c.insert({"a": 1}, kind="k")
            [j] = await c.claim(["default"], 1)
            assert await c.retry(j.id, j.run_lease) is True
            assert (await c.get_job(job.id)).run_at == clock.now + dt.timedelta(seconds=2)
            clock.advance(2)
            assert await c.promote_due() == 1
            [j2] = await c.claim(["default"], 1)
            assert await c.complete_many([(j2.id, j2.run_lease), (j.id, j.run_lease)]) == [True, False]
            [stat] = await c.queue_stats()
            return stat.completed

    assert asyncio.run(main()) == 1


def test_priority_aging_lets_a_long_waiting_low_priority_lane_go_first(client, clock):
    old_low = client.insert({"a": "low"}, kind="k", queue="age", priority=4)
    clock.advance(50)
    fresh_high = client.insert({"a": "high"}, kind="k", queue="age", priority=2)
    assert [j.id for j in client.claim(["age"], 1)] == [fresh_high.id]  # no aging: priority wins
    client.cancel_job(fresh_high.id)
    fresh_high = client.insert({"a": "high2"}, kind="k", queue="age", priority=2)
    # 50 s waited / 10 s interval -> priority 4 ages to 1, ahead of a fresh 2.
    assert [j.id for j in client.claim(["age"], 1, priority_aging_interval_ms=10_000)] == [old_low.id]
    assert [j.id for j in client.claim(["age"], 1, priority_aging_interval_ms=10_000)] == [fresh_high.id]
    with pytest.raises(ValidationError):
        client.claim(["age"], 1, priority_aging_interval_ms=-1)


def test_priority_aging_ties_go_to_the_longest_waiting_lane(client, clock):
    old_low = client.insert({"a": "low"}, kind="k", queue="tie", priority=4)
    clock.advance(40)
    high = client.insert({"a": "high"}, kind="k", queue="tie", priority=2)
    clock.advance(20)
    # Both lanes aged to priority 1 (10 s interval); the older head wins.
    assert [j.id for j in client.claim(["tie"], 1, priority_aging_interval_ms=10_000)] == [old_low.id]
    assert [j.id for j in client.claim(["tie"], 1, priority_aging_interval_ms=10_000)] == [high.id]


def test_claim_with_per_queue_limits_respects_each_cap_and_lane_order(client):
    # Uneven backlogs: 5 jobs in "a", 1 in "b", 4 in "c".
    for queue, count in (("a", 5), ("b", 1), ("c", 4)):
        client.enqueue_many_copy([{"n": i} for i in range(count)], kind="k", queue=queue)
    jobs = client.claim(["c", "a", "b"], 8, limits=[3, 2, 3])
    by_queue: dict[str, list] = {}
    for job in jobs:
        by_queue.setdefault(job.queue, []).append(job)
    # Each queue gets at most its own cap (b has only one job), nothing more.
    assert {q: len(js) for q, js in by_queue.items()} == {"a": 2, "b": 1, "c": 3}
    # Within a lane, the claim takes the head of the lane: the lowest numbers.
    for queue, claimed in by_queue.items():
        assert sorted(j.args["n"] for j in claimed) == list(range(len(claimed))), queue
    # A zero limit claims nothing from that queue even when it has work.
    again = client.claim(["a", "c"], 5, limits=[0, 5])
    assert {j.queue for j in again} == {"c"}
    assert [j.args["n"] for j in again] == [3]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([1], "limits needs one entry per queue: 1 for 2 queues"),
        ([1, -1], "each per-queue limit must be a non-negative integer, got -1"),
        ([1, True], "each per-queue limit must be a non-negative integer, got True"),
        ([3, 3], "per-queue limits add up to 6, above limit 5"),
    ],
)
def test_claim_per_queue_limits_are_validated(client, limits, message):
    client.insert({"n": 1}, kind="k", queue="a")
    with pytest.raises(ValidationError) as info:
        client.claim(["a", "b"], 5, limits=limits)
    assert str(info.value) == message
    # Nothing was claimed by the rejected call.
    assert [j.args["n"] for j in client.claim(["a"], 5)] == [1]


def test_claimed_args_decode_exactly_with_the_fast_json_loader(client):
    # Client pools decode json/jsonb with orjson; what orjson refuses (integers
    # beyond 64 bits) falls back to the standard decoder, so nothing is lost.
    from awa.storage.codec import FastJsonbLoader

    args = [
        {"n": 2**70, "neg": -(2**65), "nested": [{"big": 10**30}]},
        {"f": 1.5, "e": 1e-7, "s": "caf\u00e9 \u2603", "none": None, "t": True, "list": [1, "2", [3]]},
    ]
    for a in args:
        client.insert(a, kind="k", queue="json")
    claimed = client.claim(["json"], 5)
    assert sorted((j.args for j in claimed), key=str) == sorted(args, key=str)
    with client.connection() as conn:  # the pool's connections carry the loader
        assert conn.adapters.get_loader(conn.adapters.types["jsonb"].oid, 0) is FastJsonbLoader
