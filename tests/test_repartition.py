"""Online repartitioning on real PostgreSQL (ADR 0024, specs/PartitionedQueueRepartition.tla)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import psycopg
import pytest

from awa.client import AsyncClient, Client
from awa.errors import ValidationError
from awa.routing import PartitionedQueue
from awa.routing.schemes import DEFAULT_SCHEME
from awa.worker.partitions import WidthFollower, partition_names, per_partition_groups
from test_cli_helpers import run_awa

KEYS = [f"key-{i}" for i in range(24)]


def _state(url):
    """Everything a width change writes."""
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT logical_queue, partitions, epoch FROM awa.queue_partitions ORDER BY 1").fetchall(),
            conn.execute("SELECT count(*) FROM awa.partition_epochs").fetchone()[0],
            conn.execute("SELECT count(*) FROM awa.partition_marks").fetchone()[0],
            conn.execute("SELECT count(*) FROM awa.lane_fences").fetchone()[0],
            conn.execute("SELECT count(*) FROM awa.claim_heads WHERE fence_seq IS NOT NULL").fetchone()[0],
        )


def _drain(client, logical, span, limit=5, only=None):
    """Claim and complete everything, lifting fences when claims come back
    empty; the hand-outs in order as (key, index) from the job args."""
    queues = only or partition_names(logical, span)
    out = []
    while True:
        got = client.claim(queues, limit)
        if not got:
            if client.lift_fences(logical) == 0:
                return out
            continue
        for job in got:
            out.append((job.args["k"], job.args["i"], job.id))
            client.complete(job.id, job.run_lease)


def _fifo_violations(handed):
    last: dict[str, int] = defaultdict(lambda: -1)
    bad = 0
    for key, index, _id in handed:
        if index < last[key]:
            bad += 1
        last[key] = max(last[key], index)
    return bad


def _enqueue_round(client, pq, start, copy):
    """One keyed job per key, routed by ``pq`` (the producer's, possibly stale, width)."""
    if copy:
        jobs = [{"k": k, "i": start + n} for n, k in enumerate(KEYS)]
        client.insert_many_copy(jobs, kind="t", opts=[pq.route_by_key(k) for k in KEYS])
    else:
        for n, k in enumerate(KEYS):
            client.insert({"k": k, "i": start + n}, kind="t", queue=pq.queue_for_key(k), ordering_key=k)


@pytest.mark.parametrize("old, new", [(4, 8), (8, 4)])
def test_a_width_change_keeps_per_key_order_and_loses_nothing(database_url, old, new):
    with Client(database_url) as client:
        pq = client.partitioned_queue("orders", old)
        _enqueue_round(client, pq, 0, copy=False)
        _enqueue_round(client, pq, 100, copy=True)
        # Part of the backlog is handed out before the change.
        first = []
        for job in client.claim(partition_names("orders", old)[:2], 3):
            first.append((job.args["k"], job.args["i"], job.id))
            client.complete(job.id, job.run_lease)
        assert first
        done = client.repartition("orders", new)
        assert done == {"logical_queue": "orders", "epoch": 2, "old_width": old, "new_width": new, "changed": True}
        status = client.repartition_status("orders")
        assert status["width"] == new and status["in_progress"] and status["changes"][0]["fences_up"] > 0
        # The producer keeps its stale PartitionedQueue: the database routes with the new width.
        _enqueue_round(client, pq, 200, copy=False)
        _enqueue_round(client, pq, 300, copy=True)
        fresh = PartitionedQueue("orders", new)
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT ordering_key, queue FROM awa.jobs WHERE (args->>'i')::int >= 200").fetchall()
        assert all(q == fresh.queue_for_key(bytes(k)) for k, q in rows)
        moved = [k for k in KEYS if pq.queue_for_key(k) != fresh.queue_for_key(k)]
        assert moved  # the test exercises keys that change partition
        handed = first + _drain(client, "orders", max(old, new))
        assert _fifo_violations(handed) == 0
        ids = [h[2] for h in handed]
        assert len(ids) == len(set(ids)) == 4 * len(KEYS)
        status = client.repartition_status("orders")
        assert not status["in_progress"] and status["changes"][0]["finished_at"] is not None


def test_a_moved_key_waits_for_its_old_jobs(database_url):
    with Client(database_url) as client:
        pq4 = client.partitioned_queue("w", 4)
        pq8 = PartitionedQueue("w", 8)
        key = next(k for k in KEYS if pq4.queue_for_key(k) != pq8.queue_for_key(k))
        client.insert({"k": key, "i": 0}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        client.repartition("w", 8)
        client.insert({"k": key, "i": 1}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        new_lane = [pq8.queue_for_key(key)]
        assert client.claim(new_lane, 10) == []  # fenced
        client.lift_fences("w")  # fences whose sources are empty lift; not this one
        assert client.claim(new_lane, 10) == []  # its source has not handed out job 0
        [old] = client.claim([pq4.queue_for_key(key)], 10)
        assert old.args["i"] == 0
        assert client.lift_fences("w") > 0
        [new] = client.claim(new_lane, 10)
        assert new.args["i"] == 1


@pytest.mark.parametrize("middle", [False, True])
def test_a_change_while_an_earlier_one_drains_is_chained(database_url, middle):
    """4 -> 2 -> 1 with a key in partition 3: lanes 3, 1, 0. Without a job in
    lane 1 this is the trace the brief's lift rule fails (ADR 0024): lane 1's
    mark is handed out, but its own fence, whose source is lane 3, is up."""
    with Client(database_url) as client:
        pq4 = client.partitioned_queue("c", 4)
        key = next(k for k in (f"x{i}" for i in range(200)) if DEFAULT_SCHEME.partition_for_key(k, 4) == 3)
        client.insert({"k": key, "i": 0}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        assert client.repartition("c", 2)["epoch"] == 2
        if middle:
            job1 = client.insert({"k": key, "i": 1}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
            assert job1.queue == "c__p1"
        assert client.repartition("c", 1)["epoch"] == 3
        job2 = client.insert({"k": key, "i": 2}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        assert job2.queue == "c"
        client.lift_fences("c")
        assert client.claim(["c"], 10) == []  # lane 0 stays fenced while job 0 waits in lane 3
        if middle:
            assert client.claim(["c__p1"], 10) == []
        handed = _drain(client, "c", 4)
        assert [h[1] for h in handed] == ([0, 1, 2] if middle else [0, 2])
        assert not client.repartition_status("c")["in_progress"]


def test_bad_input_changes_nothing(database_url):
    with Client(database_url) as client:
        client.partitioned_queue("b", 4)
        before = _state(database_url)
        for bad in (0, -1, 32768, 2.5, True, "8", None):
            with pytest.raises(ValidationError):
                client.repartition("b", bad)
        with pytest.raises(ValidationError, match="no partition count is registered"):
            client.repartition("unknown", 8)
        with pytest.raises(ValidationError):
            client.repartition("b__p2", 8)
        with pytest.raises(ValidationError):
            client.repartition("b", 8, lock_timeout_ms=0)
        with pytest.raises(ValidationError):
            client.repartition_status("unknown")
        assert _state(database_url) == before
        assert client.repartition("b", 4)["changed"] is False
        assert _state(database_url) == before


@pytest.mark.parametrize("holder", ["exclusive", "shared"])
def test_a_held_queue_key_makes_the_change_give_up(database_url, holder):
    """Another change (exclusive) or an open producer transaction (shared) holds the key."""
    with Client(database_url) as client:
        client.partitioned_queue("h", 4)
        before = _state(database_url)
        with psycopg.connect(database_url) as other:
            lock = "pg_advisory_xact_lock" if holder == "exclusive" else "pg_advisory_xact_lock_shared"
            other.execute(f"SELECT {lock}(hashtext('\"awa\".queue_partitions'), hashtext('h'))")
            with pytest.raises(ValidationError, match="stayed held"):
                client.repartition("h", 8, lock_timeout_ms=50, attempts=2)
            other.rollback()
        assert _state(database_url) == before
        assert client.repartition("h", 8)["changed"]


def test_a_crash_mid_change_records_nothing(database_url):
    with Client(database_url) as client:
        pq = client.partitioned_queue("x", 4)
        _enqueue_round(client, pq, 0, copy=False)
        before = _state(database_url)
    conn = psycopg.connect(database_url)
    row = conn.execute("SELECT outcome FROM awa.repartition('x', 8, 1000, 1)").fetchone()
    assert row[0] == "changed"
    conn.close()  # the process dies before COMMIT
    assert _state(database_url) == before
    with Client(database_url) as client:
        handed = _drain(client, "x", 4)
        assert len(handed) == len(KEYS) and _fifo_violations(handed) == 0


def test_a_rescued_job_is_rerouted_with_the_current_width(database_url):
    with Client(database_url) as client:
        pq4 = client.partitioned_queue("r", 4)
        pq8 = PartitionedQueue("r", 8)
        key = next(k for k in KEYS if pq4.queue_for_key(k) != pq8.queue_for_key(k))
        client.insert({"k": key, "i": 0}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        [running] = client.claim([pq4.queue_for_key(key)], 1)
        client.repartition("r", 8)
        client.insert({"k": key, "i": 1}, kind="t", queue=pq4.queue_for_key(key), ordering_key=key)
        with psycopg.connect(database_url) as conn:  # its worker died long ago
            conn.execute("UPDATE awa.jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [running.id])
        assert len(client.rescue_expired(heartbeat_timeout=60)) == 1
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE awa.jobs SET run_at = now() WHERE id = %s", [running.id])
        assert client.promote_due() == 1
        job = client.get_job(running.id)
        assert job.queue == pq8.queue_for_key(key)
        handed = _drain(client, "r", 8)
        assert [h[1] for h in handed] == [1, 0]  # a re-hand-out after rescue does not count for order


def test_async_client_and_cli(database_url):
    async def main():
        client = AsyncClient(database_url)
        try:
            await client.partitioned_queue("a", 2)
            done = await client.repartition("a", 3)
            status = await client.repartition_status("a")
            return done, status
        finally:
            await client.close()

    done, status = asyncio.run(main())
    assert done["epoch"] == 2 and status["width"] == 3
    result = run_awa("queue", "repartition", "a", "--to", "1", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "a: 3 -> 1 partitions (epoch 3)" in result.stdout
    assert "epoch 2: 2 -> 3" in result.stdout and "epoch 3: 3 -> 1" in result.stdout
    result = run_awa("queue", "repartition", "nope", "--to", "2", database_url=database_url)
    assert result.returncode != 0 and "no partition count is registered" in result.stderr


def test_the_follower_adds_the_partitions_a_change_gives():
    class Store:
        spans = {"q": (4, 1, 4)}

        async def partition_spans(self):
            return self.spans

    class Q:
        def __init__(self, name):
            self.name = name

    unit = [Q(n) for n in partition_names("q", 4)]
    follower = WidthFollower(Store(), {"q": unit}, lambda u, name: u.append(Q(name)))
    assert asyncio.run(follower.poll()) == []
    Store.spans = {"q": (8, 2, 8)}
    assert asyncio.run(follower.poll()) == [f"q__p{i}" for i in range(4, 8)]
    Store.spans = {"q": (2, 3, 8)}  # a shrink drains: nothing dropped
    assert asyncio.run(follower.poll()) == []
    assert [q.name for q in unit] == partition_names("q", 8)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-slots", "entry-per-partition"])
def test_a_running_worker_follows_a_grow_and_its_leader_lifts(database_url, shared):
    """A worker at width 2 (shared slots, or one entry per partition as
    queue_configs writes them), a change to 4 while it runs: the partitions
    added are served and every job is handed out in key order."""
    from worker_support.helpers import FAST, WorkerAsyncClient, wait_until

    name = "live" if shared else "each"

    async def main():
        client = WorkerAsyncClient(database_url)
        pq2 = await client.partitioned_queue(name, 2)

        async def handle(job):
            return None

        client.task("t", queue=name)(handle)
        keys = KEYS[:12]
        n = 0
        for _round in range(3):
            for k in keys:
                await client.insert({"k": k, "i": n}, kind="t", queue=pq2.queue_for_key(k), ordering_key=k)
                n += 1
        await client.start([pq2.shared_queue_config(4)] if shared else pq2.queue_configs(2), **FAST)
        await client.repartition(name, 4)
        for _round in range(3):
            for k in keys:
                await client.insert({"k": k, "i": n}, kind="t", queue=pq2.queue_for_key(k), ordering_key=k)
                n += 1

        async def all_done():
            return len(await client.list_jobs(state="completed", limit=1000)) == n

        await wait_until(all_done, timeout=30)
        status = await client.repartition_status(name)
        await client.shutdown()
        await client.close()
        return status

    status = asyncio.run(main())
    with psycopg.connect(database_url) as conn:
        added = conn.execute("SELECT count(*) FROM awa.jobs WHERE queue IN (%s, %s) AND state = 'completed'",
                             (f"{name}__p2", f"{name}__p3")).fetchone()[0]
        assert added > 0  # the partitions the change added were served
        rows = conn.execute("SELECT args->>'k', (args->>'i')::int, attempted_at, attempt FROM awa.jobs "
                            "ORDER BY attempted_at, lane_seq").fetchall()
    assert all(attempt == 1 for *_rest, attempt in rows)
    assert _fifo_violations([(k, i, None) for k, i, _at, _a in rows]) == 0
    assert status["width"] == 4


def test_per_partition_groups_are_whole_logical_queues():
    names = ["a", "a__p1", "a__p2", "b__p1", "c", "d", "d__p2"]
    assert per_partition_groups(names) == {"a": ["a", "a__p1", "a__p2"], "c": ["c"]}
