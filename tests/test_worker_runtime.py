"""The worker runtime against a real PostgreSQL: dispatch, partitions, outcomes,
capacity, rate limits, wake-ups, maintenance, shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import awa
from awa.errors import ValidationError
from awa.routing import PartitionedQueue
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, WorkerClient, count_state, run, states, wait_until


@dataclass
class SendEmail:
    to: str
    subject: str


# --- dispatch -----------------------------------------------------------------


def test_async_and_sync_handlers_complete_jobs_with_typed_args(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        got: list[SendEmail] = []
        threads: set[str] = set()

        @client.task(SendEmail, queue="email")
        async def send(job):
            assert job.kind == "send_email" and job.queue == "email" and job.attempt == 1
            got.append(job.args)

        @client.task("report", queue="reports")
        def report(job):  # sync: runs on the worker thread pool
            threads.add(threading.current_thread().name)
            assert job.args == {"day": job.args["day"]}

        await client.insert_many_copy([SendEmail(f"u{i}@x", "hi") for i in range(20)], queue="email")
        await client.insert_many_copy([{"day": i} for i in range(10)], kind="report", queue="reports")
        await client.start([("email", 4), ("reports", 2)], **FAST)
        try:
            await wait_until(lambda: _done(client, 30))
        finally:
            await client.shutdown()
            await client.close()
        assert sorted(a.to for a in got) == sorted(f"u{i}@x" for i in range(20))
        assert all(isinstance(a, SendEmail) for a in got)
        assert threads and all(name.startswith("awa-worker") for name in threads)

    run(main())
    assert states(database_url) == {"completed": 30}


async def _done(client, n: int) -> bool:
    return await count_state(client, "completed") >= n


def test_partitioned_queue_configs_claim_and_complete_every_partition(database_url):
    pq = PartitionedQueue("email", 4)

    async def main():
        client = WorkerAsyncClient(database_url)
        seen: Counter[str] = Counter()

        # Registered on partition 0 only: dispatch is by kind, so every partition is served.
        @client.task(SendEmail, queue=pq.physical_queues[0])
        async def send(job):
            seen[job.queue] += 1

        for index in range(4):
            await client.insert_many_copy(
                [SendEmail(f"{index}-{i}", "s") for i in range(15)], queue=pq.queue_for_index(index)
            )
        await client.start(pq.queue_configs(max_workers_per_partition=2), **FAST)
        try:
            await wait_until(lambda: _done(client, 60))
        finally:
            await client.shutdown()
            await client.close()
        return seen

    seen = run(main())
    assert seen == {queue: 15 for queue in pq.physical_queues}
    assert states(database_url) == {"completed": 60}


def test_eight_partitions_on_a_ten_connection_pool_do_not_stall(database_url):
    """awa-pg stalls here (a listener per queue eats its pool); we use one LISTEN connection."""
    pq = PartitionedQueue("hot", 8)

    async def main():
        client = WorkerAsyncClient(database_url, max_connections=10)
        done = 0

        @client.task(Ping, queue=pq.physical_queues[0])
        async def ping(job):
            nonlocal done
            done += 1

        # start() first, on a fresh client: its pool is not even open yet when it is resized.
        await client.start(pq.queue_configs(max_workers_per_partition=4), **FAST)
        await client.insert_many_copy(
            [Ping(i) for i in range(400)], queue=pq.logical_queue,
            opts=[{"queue": pq.queue_for_index(i % 8)} for i in range(400)],
        )
        try:
            await wait_until(lambda: _done(client, 400), timeout=20)
            listeners = await _listen_backends(database_url)
        finally:
            await client.shutdown()
            await client.close()
        return listeners

    assert run(main()) == 1
    assert states(database_url) == {"completed": 400}


async def _listen_backends(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
        )
        return (await cur.fetchone())[0]


def test_caller_pool_too_small_is_refused_with_the_budget(database_url):
    async def main():
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=3, open=False)
        await pool.open()
        client = WorkerAsyncClient(pool)

        @client.task(Ping, queue="q")
        async def ping(job):
            return None

        try:
            with pytest.raises(ValidationError, match=re.escape("connection pool max_size=3 is too small for this worker: it needs 5")):
                await client.start([{"name": "q", "max_workers": 4, "claimers": 4}])
            assert client.worker_runtime is None
        finally:
            await pool.close()

    run(main())


# --- outcomes -------------------------------------------------------------------


@dataclass
class Outcome:
    what: str


def test_handler_outcomes(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        await client.set_queue_dlq("dlq")

        @client.task(Outcome, queue="o")
        async def handle(job):
            what = job.args.what
            if what == "retry_after":
                raise awa.RetryAfter(30)
            if what == "retry_after_returned":
                return awa.RetryAfter(45)
            if what == "snooze":
                return awa.Snooze(60)
            if what == "cancel":
                raise awa.Cancel("not needed")
            if what == "cancel_returned":
                return awa.Cancel()
            if what == "terminal":
                raise awa.TerminalError("bad input")
            if what in ("boom", "boom_last", "dlq"):
                raise ValueError("transient " + what)
            return "ignored return value"

        ids = {}
        for what in ("retry_after", "retry_after_returned", "snooze", "cancel", "cancel_returned", "terminal", "boom", "ok"):
            ids[what] = (await client.insert(Outcome(what), queue="o")).id
        ids["boom_last"] = (await client.insert(Outcome("boom_last"), queue="o", max_attempts=1)).id
        ids["dlq"] = (await client.insert(Outcome("dlq"), queue="dlq", max_attempts=1)).id
        await client.start([("o", 4), ("dlq", 1)], **FAST)
        try:
            async def settled():
                jobs = [await client.get_job(i) for i in ids.values() if i != ids["dlq"]]
                return all(j.state.value != "running" and j.state.value != "available" for j in jobs) and (
                    await client.dlq_depth() == 1
                )

            await wait_until(settled)
        finally:
            await client.shutdown()
        jobs = {what: await client.get_job(i) for what, i in ids.items() if what != "dlq"}
        dlq = await client.get_dlq_job(ids["dlq"])
        await client.close()
        return jobs, dlq

    jobs, dlq = run(main())
    now = dt.datetime.now(dt.timezone.utc)
    assert jobs["ok"].state.value == "completed"
    for what, delay in (("retry_after", 30), ("retry_after_returned", 45)):
        job = jobs[what]
        assert job.state.value == "retryable" and job.attempt == 1
        assert dt.timedelta(seconds=delay - 5) < job.run_at - now <= dt.timedelta(seconds=delay)
    snoozed = jobs["snooze"]
    assert snoozed.state.value == "scheduled" and snoozed.attempt == 0  # no attempt used
    assert jobs["cancel"].state.value == "cancelled" and jobs["cancel_returned"].state.value == "cancelled"
    assert jobs["terminal"].state.value == "failed" and "bad input" in jobs["terminal"].errors[-1]["error"]
    boom = jobs["boom"]
    assert boom.state.value == "retryable" and "ValueError: transient boom" in boom.errors[-1]["error"]
    assert dt.timedelta(0) < boom.run_at - now < dt.timedelta(seconds=10)  # backoff, not immediate
    assert jobs["boom_last"].state.value == "failed"
    assert dlq is not None and dlq.reason == "max_attempts_exhausted"


def test_retry_runs_again_until_success_and_progress_is_stored(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        attempts: list[int] = []

        keys: set = set()

        @client.task(Ping, queue="r")
        async def flaky(job):
            attempts.append(job.attempt)
            keys.add((job.ordering_key, job.queue, job.run_lease == job.attempt))
            job.set_progress(50, "half way", step=job.attempt)
            assert await job.flush_progress()
            if job.attempt < 3:
                raise awa.RetryAfter(0.05)

        job = await client.insert(Ping(1), queue="r", ordering_key="order-7")
        await client.start([("r", 1)], **FAST)
        try:
            await wait_until(lambda: _done(client, 1))
        finally:
            await client.shutdown()
        stored = await client.get_job(job.id)
        await client.close()
        assert keys == {(b"order-7", "r", True)}  # the key survives retries
        return attempts, stored

    attempts, stored = run(main())
    assert attempts == [1, 2, 3]
    assert stored.state.value == "completed" and stored.attempt == 3
    assert stored.progress == {"percent": 50, "message": "half way", "step": 3}
    assert len(stored.errors) == 2


# --- capacity and rate ----------------------------------------------------------


class _Gauge:
    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total = 0
        self.peak_total = 0

    def enter(self, queue: str) -> None:
        self.now[queue] += 1
        self.total += 1
        self.peak[queue] = max(self.peak[queue], self.now[queue])
        self.peak_total = max(self.peak_total, self.total)

    def leave(self, queue: str) -> None:
        self.now[queue] -= 1
        self.total -= 1


def _gauged_drain(database_url, pq, jobs_per_partition, configs, sleep_s=0.02):
    """Run ``jobs_per_partition[i]`` slow jobs in partition i under ``configs``;
    (the gauge of jobs running per queue, the runtime's health per queue)."""

    async def main():
        client = WorkerAsyncClient(database_url)
        gauge = _Gauge()

        @client.task(Ping, queue=pq.physical_queues[0])
        async def slow(job):
            gauge.enter(job.queue)
            await asyncio.sleep(sleep_s)
            gauge.leave(job.queue)

        for index, count in enumerate(jobs_per_partition):
            if count:
                await client.insert_many_copy([Ping(i) for i in range(count)], queue=pq.queue_for_index(index))
        await client.start(configs, **FAST)
        try:
            await wait_until(lambda: _done(client, sum(jobs_per_partition)), timeout=20)
            health = client.worker_health()["queues"]
        finally:
            await client.shutdown()
            await client.close()
        return gauge, health

    return run(main())


def test_max_workers_is_a_per_partition_cap(database_url):
    pq = PartitionedQueue("cap", 3)
    configs = pq.queue_configs(max_workers_per_partition=2, claim_batch_size=8)
    gauge, _ = _gauged_drain(database_url, pq, [30, 30, 30], configs)
    assert all(gauge.peak[q] == 2 for q in pq.physical_queues), gauge.peak
    assert gauge.peak_total <= 6


def test_a_shared_entry_caps_its_partitions_together_and_serves_each(database_url):
    """ADR 0014: one claim loop, one statement across the partitions, the slots shared."""
    pq = PartitionedQueue("pool", 3)
    gauge, health = _gauged_drain(database_url, pq, [30, 30, 30], [pq.shared_queue_config(4, claim_batch_size=3)])
    assert gauge.peak_total == 4  # the shared cap is used and never exceeded
    assert all(gauge.peak[q] >= 1 for q in pq.physical_queues), gauge.peak
    assert {q: (h["claimed"], h["capacity"], h["slots_of"]) for q, h in health.items()} == {
        q: (30, 4, "pool") for q in pq.physical_queues
    }
    assert states(database_url) == {"completed": 90}


def test_a_hot_partition_may_use_every_shared_slot(database_url):
    pq = PartitionedQueue("hot", 4)
    gauge, _ = _gauged_drain(database_url, pq, [0, 0, 40, 0], [pq.shared_queue_config(6)], sleep_s=0.03)
    # With queue_configs(max_workers_per_partition=...) the hot partition would
    # be held to its own share; here it takes every slot the entry has.
    assert gauge.peak == {pq.physical_queues[2]: 6}
    assert states(database_url) == {"completed": 40}


def test_sync_handlers_respect_max_workers(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}

        @client.task(Ping, queue="s")
        def blocking(job):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1

        await client.insert_many_copy([Ping(i) for i in range(40)], queue="s")
        await client.start([("s", 3)], **FAST)
        try:
            await wait_until(lambda: _done(client, 40), timeout=20)
        finally:
            await client.shutdown()
            await client.close()
        return state["peak"]

    assert run(main()) == 3


def test_weighted_mode_shares_the_global_cap(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        gauge = _Gauge()

        finished: dict[str, float] = {}

        @client.task(Ping, queue="a")
        async def slow(job):
            gauge.enter(job.queue)
            await asyncio.sleep(0.03)
            gauge.leave(job.queue)
            finished[job.queue] = time.monotonic()

        await client.insert_many_copy([Ping(i) for i in range(40)], queue="a")
        await client.insert_many_copy([Ping(i) for i in range(40)], kind="ping", queue="b")
        await client.start(
            [{"name": "a", "min_workers": 1, "weight": 1}, {"name": "b", "min_workers": 1, "weight": 3}],
            global_max_workers=6,
            **FAST,
        )
        try:
            await wait_until(lambda: _done(client, 80), timeout=20)
        finally:
            await client.shutdown()
            await client.close()
        return gauge, finished

    gauge, finished = run(main())
    assert gauge.peak_total == 6  # the cap is used and never exceeded
    # While both are busy b gets 1 + 3 slots and a 1 + 1: b drains its 40 jobs first.
    assert finished["b"] < finished["a"]


def test_rate_limit_bounds_the_start_rate(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        started: list[float] = []

        @client.task(Ping, queue="rl")
        async def tick(job):
            started.append(time.monotonic())

        await client.insert_many_copy([Ping(i) for i in range(14)], queue="rl")
        await client.start([{"name": "rl", "max_workers": 10, "rate_limit": (20.0, 4)}], **FAST)
        try:
            await wait_until(lambda: _done(client, 14), timeout=20)
        finally:
            await client.shutdown()
            await client.close()
        return sorted(started)

    started = run(main())
    # burst 4, then 20/s: the 14th start comes >= 10/20 s after the first.
    assert started[-1] - started[0] >= 0.45
    for i, t in enumerate(started):  # never more than burst + rate * elapsed (+1 for rounding)
        assert i + 1 <= 4 + 20 * (t - started[0]) + 1


# --- wake-up and maintenance ------------------------------------------------------


def test_notify_wakes_an_idle_worker_long_before_the_poll_interval(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        done = asyncio.Event()

        @client.task(Ping, queue="n")
        async def ping(job):
            done.set()

        await client.start([("n", 1)], **{**FAST, "poll_interval_ms": 30_000})
        try:
            await asyncio.sleep(0.3)  # the claimer has found the queue empty and sleeps
            t0 = time.monotonic()
            await client.insert(Ping(1), queue="n")
            await asyncio.wait_for(done.wait(), timeout=10)
            return time.monotonic() - t0
        finally:
            await client.shutdown()
            await client.close()

    assert run(main()) < 5.0  # 30 s poll: only the NOTIFY can explain a pickup this fast


def test_a_claim_that_meets_a_lane_locked_by_another_claimer_is_retried_soon(database_url):
    """Right after a full batch, an empty claim usually means another process
    holds the lane's claim head (SKIP LOCKED), not that the queue is drained.
    The claimer must look again within tens of milliseconds, not leave its
    slots idle until a NOTIFY or the poll (30 s here; nothing is enqueued)."""

    async def main():
        client = WorkerAsyncClient(database_url)
        first_batch_running = asyncio.Event()
        release_first_batch = asyncio.Event()
        handled: list[int] = []

        @client.task(Ping, queue="locked")
        async def ping(job):
            handled.append(job.args.n)
            if len(handled) == 4:
                first_batch_running.set()
            if job.args.n < 4:
                await release_first_batch.wait()

        await client.insert_many_copy([Ping(n) for n in range(8)], queue="locked")
        holder = await psycopg.AsyncConnection.connect(database_url)
        try:
            await client.start(
                [{"name": "locked", "max_workers": 4, "claim_batch_size": 4}], **{**FAST, "poll_interval_ms": 30_000}
            )
            await asyncio.wait_for(first_batch_running.wait(), timeout=10)
            # Another claimer now holds the lane's claim head: the next claims find it locked.
            await holder.execute(
                "SELECT 1 FROM awa.claim_heads WHERE queue = 'locked' FOR UPDATE"
            )
            sent = client.worker_runtime.store.claims.statements_sent
            release_first_batch.set()
            # Hold it until two claims have come back empty (the first after the
            # full batch and one quick retry, the old limit): a third is then
            # on its way only if the claimer keeps looking.
            await wait_until(
                lambda: client.worker_runtime.store.claims.statements_sent >= sent + 3, timeout=10, step=0.001
            )
            await holder.rollback()
            t0 = time.monotonic()
            await wait_until(lambda: len(handled) == 8, timeout=10, step=0.005)
            return time.monotonic() - t0
        finally:
            await holder.close()
            await client.shutdown()
            await client.close()

    assert run(main()) < 5.0  # a 30 s poll and no NOTIFY: only the retries explain this


def test_leader_promotes_due_jobs_and_rescues_a_dead_attempt(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        handled: list[int] = []

        @client.task(Ping, queue="m")
        async def ping(job):
            handled.append(job.args.n)

        later = await client.insert(Ping(1), queue="m", run_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.5))
        orphan = await client.insert(Ping(2), queue="m")
        [dead] = await client.claim("m", 1)  # a "worker" that claims and dies: no heartbeats
        assert dead.id == orphan.id
        await client.start([("m", 2)], **FAST)
        try:
            await wait_until(lambda: _done(client, 2), timeout=15)
            health = client.worker_health()
        finally:
            await client.shutdown()
        late_completion = await client.complete(dead.id, dead.run_lease)
        rescued = await client.get_job(orphan.id)
        await client.close()
        return handled, late_completion, rescued, health, later

    handled, late_completion, rescued, health, later = run(main())
    assert sorted(handled) == [1, 2]
    assert late_completion is False  # the dead attempt's lease is stale
    assert rescued.state.value == "completed" and rescued.attempt == 2
    assert "heartbeat expired" in rescued.errors[0]["error"]
    assert health["leader"] is True


def test_exactly_one_maintenance_leader(database_url):
    async def main():
        clients = [WorkerAsyncClient(database_url) for _ in range(3)]
        for c in clients:
            @c.task(Ping, queue="l")
            async def ping(job):
                return None

            await c.start([("l", 1)], **FAST)
        try:
            await asyncio.sleep(0.5)
            leaders = [c.worker_runtime.is_leader for c in clients]
            await clients[leaders.index(True)].shutdown()  # the leader leaves: another takes over
            rest = [c for i, c in enumerate(clients) if not leaders[i]]
            await wait_until(lambda: _any_leader(rest), timeout=5)
            after = [c.worker_runtime.is_leader for c in rest]
        finally:
            for c in clients:
                await c.shutdown()
                await c.close()
        return leaders, after

    leaders, after = run(main())
    assert leaders.count(True) == 1
    assert after.count(True) == 1


async def _any_leader(clients) -> bool:
    return any(c.worker_runtime.is_leader for c in clients)


# --- shutdown --------------------------------------------------------------------


def test_graceful_shutdown_finishes_running_jobs_and_loses_nothing(database_url):
    runs: Counter[int] = Counter()

    async def main():
        first = WorkerAsyncClient(database_url)

        @first.task(Ping, queue="g")
        async def slow(job):
            runs[job.args.n] += 1
            await asyncio.sleep(0.1)

        await first.insert_many_copy([Ping(i) for i in range(30)], queue="g")
        await first.start([("g", 5)], **FAST)
        await wait_until(lambda: _started(runs, 5))
        await first.shutdown(timeout_ms=5000)
        counts = states(database_url)
        await first.close()
        assert "running" not in counts  # every started job was finished, none abandoned
        assert counts["completed"] == sum(runs.values())

        second = WorkerAsyncClient(database_url)

        @second.task(Ping, queue="g")
        async def fast(job):
            runs[job.args.n] += 1

        await second.start([("g", 5)], **FAST)
        try:
            await wait_until(lambda: _done(second, 30))
        finally:
            await second.shutdown()
            await second.close()

    run(main())
    assert states(database_url) == {"completed": 30}
    assert set(runs) == set(range(30)) and set(runs.values()) == {1}  # each job ran exactly once


async def _started(runs: Counter[int], n: int) -> bool:
    return sum(runs.values()) >= n


def test_shutdown_timeout_releases_stuck_jobs_for_another_worker(database_url):
    async def main():
        stuck = WorkerAsyncClient(database_url)
        cancelled_seen = asyncio.Event()
        entered = asyncio.Event()

        @stuck.task(Ping, queue="t")
        async def hang(job):
            entered.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled_seen.set()
                raise

        job = await stuck.insert(Ping(1), queue="t")
        await stuck.start([("t", 1)], **FAST)
        await asyncio.wait_for(entered.wait(), 10)
        t0 = time.monotonic()
        await stuck.shutdown(timeout_ms=200)
        took = time.monotonic() - t0
        released = await stuck.get_job(job.id)
        await stuck.close()

        rescuer = WorkerAsyncClient(database_url)

        @rescuer.task(Ping, queue="t")
        async def ok(job):
            return None

        await rescuer.start([("t", 1)], **FAST)
        try:
            await wait_until(lambda: _done(rescuer, 1))
        finally:
            await rescuer.shutdown()
            final = await rescuer.get_job(job.id)
            await rescuer.close()
        return took, cancelled_seen.is_set(), released, final

    took, cancelled, released, final = run(main())
    assert took < 2.0 and cancelled
    assert released.state.value == "available" and released.attempt == 0  # no attempt used up
    assert final.state.value == "completed" and final.attempt == 1


def test_shutdown_and_admin_cancel_flip_is_cancelled(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        observed: list[str] = []
        started = asyncio.Event()

        @client.task(Outcome, queue="c")
        async def cooperative(job):
            started.set()
            while not job.is_cancelled():
                await asyncio.sleep(0.01)
            observed.append(job.args.what)
            return awa.Cancel(job.args.what)

        admin = await client.insert(Outcome("admin"), queue="c")
        await client.start([("c", 1)], **FAST)
        await asyncio.wait_for(started.wait(), 10)
        await client.cancel_job(admin.id)  # the next heartbeat finds the lease gone
        await wait_until(lambda: _flag(observed, "admin"))
        started.clear()
        on_shutdown = await client.insert(Outcome("shutdown"), queue="c")
        await asyncio.wait_for(started.wait(), 10)
        await client.shutdown(timeout_ms=2000)
        result = (await client.get_job(admin.id), await client.get_job(on_shutdown.id))
        await client.close()
        return observed, result

    observed, (admin, on_shutdown) = run(main())
    assert observed == ["admin", "shutdown"]
    assert admin.state.value == "cancelled" and on_shutdown.state.value == "cancelled"


async def _flag(items: list[str], value: str) -> bool:
    return value in items


# --- start() errors through the client, and the sync client ------------------------


def test_start_errors_through_the_client_leave_the_database_unchanged(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        with pytest.raises(ValidationError, match="register at least one worker before starting the runtime"):
            await client.start([("q", 1)])

        @client.task(Ping, queue="a")
        async def ping(job):
            return None

        @client.task("other", queue="b")
        async def other(job):
            return None

        await client.insert(Ping(1), queue="a")
        cases = [
            (dict(queues=[("a", 1)]), "start() must configure the worker queues declared via @client.task(..., queue=...): b"),
            (dict(queues=[("a", 1), ("b", 1), ("a", 2)]), "queue 'a' configured more than once"),
            (dict(queues=[("a", 1), ("b", 1)], global_max_workers=4),
             "tuple queue config is not supported with global_max_workers; use dict form with min_workers/weight"),
            (dict(queues=None, global_max_workers=4),
             "weighted mode requires explicit queue configs (global_max_workers set but queues=None)"),
            (dict(queues=[("a", 1), ("b", 1)], heartbeat_interval_ms=500, heartbeat_staleness_ms=400),
             "heartbeat_staleness_ms must exceed heartbeat_interval_ms, or healthy jobs would be rescued"),
        ]
        for kwargs, text in cases:
            with pytest.raises(ValidationError, match="^" + re.escape(text) + "$"):
                await client.start(**kwargs)
        assert client.worker_runtime is None
        assert await _listen_backends(database_url) == 0
        await client.close()

        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            single = WorkerAsyncClient(conn)

            @single.task(Ping, queue="a")
            async def ping2(job):
                return None

            with pytest.raises(ValidationError, match="needs a client built on a database URL or a connection pool"):
                await single.start([("a", 1)])

    run(main())
    assert states(database_url) == {"available": 1}


def test_sync_client_runs_the_same_runtime_on_a_background_loop(database_url):
    client = WorkerClient(database_url)
    seen: list[int] = []

    @client.task(Ping, queue="sync")
    def handle(job):
        seen.append(job.args.n)
        job.set_progress(100)
        assert job.flush_progress_sync()

    client.insert_many_copy([Ping(i) for i in range(25)], queue="sync")
    client.start([("sync", 3)], **FAST)
    try:
        deadline = time.monotonic() + 10
        while len(client.list_jobs(state="completed", limit=100)) < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.shutdown()
    assert sorted(seen) == list(range(25))
    assert states(database_url) == {"completed": 25}
    assert client.worker_runtime.stopped
    client.close()


def test_listener_connection_recovers_after_being_killed_and_leadership_stays(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        done = asyncio.Event()

        @client.task(Ping, queue="k")
        async def ping(job):
            done.set()

        await client.start([("k", 1)], **{**FAST, "poll_interval_ms": 30_000})
        try:
            await wait_until(lambda: _leader_of(client))
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
                cur = await admin.execute(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
                )
                killed = {pid for pid, _ in await cur.fetchall()}
                assert len(killed) >= 1
            await wait_until(lambda: _listening(database_url), timeout=10)
            await client.insert(Ping(1), queue="k")
            await asyncio.wait_for(done.wait(), timeout=5)  # NOTIFY again, not the 30 s poll
            # Leadership is a lease row (ADR 0019), on no connection of its own: it stays.
            assert client.worker_runtime.is_leader
            lease = await _lease_row(database_url)
            assert lease is not None and lease[1]  # (holder, live)
        finally:
            await client.shutdown()
            await client.close()
        return await _lease_row(database_url)

    after = run(main())
    assert after is not None and not after[1]  # shutdown gave the lease up


async def _leader_of(client) -> bool:
    return client.worker_runtime.is_leader


async def _lease_row(url: str):
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT holder, expires_at > clock_timestamp() FROM awa.leader_leases WHERE role = 'maintenance'"
        )
        return await cur.fetchone()


async def _listening(url: str) -> bool:
    return await _listen_backends(url) == 1


def test_per_queue_deadline_rescues_a_runaway_attempt(database_url):
    async def main():
        client = WorkerAsyncClient(database_url)
        seen: list[tuple[int, bool]] = []

        @client.task(Ping, queue="dl")
        async def runaway(job):
            if job.attempt == 1:  # heartbeats keep flowing, but the deadline passes
                for _ in range(500):
                    if job.is_cancelled():
                        break
                    await asyncio.sleep(0.01)
            seen.append((job.attempt, job.is_cancelled()))

        job = await client.insert(Ping(1), queue="dl")
        await client.start([{"name": "dl", "max_workers": 2, "deadline_duration_ms": 300}],
                           **{**FAST, "heartbeat_staleness_ms": 60_000})
        try:
            await wait_until(lambda: _done(client, 1), timeout=15)
            await wait_until(lambda: _flag([str(a) for a, _ in seen], "1"), timeout=5)
        finally:
            await client.shutdown()
        stored = await client.get_job(job.id)
        await client.close()
        return seen, stored

    seen, stored = run(main())
    assert sorted(seen) == [(1, True), (2, False)]  # the first attempt learned it lost the job
    assert stored.state.value == "completed" and stored.attempt == 2
    assert "deadline exceeded" in stored.errors[0]["error"]


@pytest.mark.parametrize("aging_ms, first", [(100, "old-low"), (0, "fresh")])
def test_priority_aging_interval_reaches_the_claim(database_url, aging_ms, first):
    async def main():
        client = WorkerAsyncClient(database_url)
        order: list[str] = []

        @client.task(Outcome, queue="age")
        async def record(job):
            order.append(job.args.what)

        await client.insert(Outcome("old-low"), queue="age", priority=4)
        await asyncio.sleep(0.6)  # six aging intervals: priority 4 competes as 1
        await client.insert_many_copy([Outcome("fresh")] * 3, queue="age", priority=2)
        await client.start([{"name": "age", "max_workers": 1, "claim_batch_size": 1,
                             "priority_aging_interval_ms": aging_ms}], **FAST)
        try:
            await wait_until(lambda: _done(client, 4))
        finally:
            await client.shutdown()
            await client.close()
        return order

    assert run(main())[0] == first
