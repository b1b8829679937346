"""Worker capacity against an oracle: running <= cap, and no idle slot while work waits.

Spec (worker capacity, issue 19 item 6): with per-partition slots every
partition runs at most ``CAP`` jobs at once; with shared slots (ADR 0014) the
partitions together run at most ``CAP``. And the claim is work-conserving:
once the worker settles, every partition (per-partition slots) or the logical
queue (shared slots) runs ``min(cap, jobs waiting + running)`` jobs, so a
claim that serves only some partitions shows up as an idle slot beside a
waiting job.

The machine runs a real worker runtime (threads) whose handlers block until
the machine releases them; it enqueues into chosen partitions and releases
running jobs. The cap is checked where it applies, on the handlers executing
at once: every handler counts itself in and out, and an overshoot is recorded
the moment it happens. A row's ``running`` state is not that count: a slot is
free as soon as its handler returns, while the completion is still on its way
to the database. Work conservation is judged from PostgreSQL's running and
available counts once the completions have landed.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from awa.routing import PartitionedQueue
from tests.machines._support import bind_machine, close_machine, machine_settings, reset_machine

pytestmark = pytest.mark.machines

CAP = 2
BATCH = 1  # claim_batch_size below the cap: a claim of more slots than a batch shows
PARTITIONS = 2
SETTLE_S = 8.0  # generous: the machine may share its cores
FAST = dict(poll_interval_ms=50, heartbeat_interval_ms=1000, heartbeat_staleness_ms=60_000, rescue_interval_ms=1000,
            promote_interval_ms=50, leader_election_interval_ms=100, completion_flush_ms=1.0)


class CapacityMachine(RuleBasedStateMachine):
    database_url = ""
    shared = False
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _tables: list[str] | None = None
    pq = PartitionedQueue("cap", PARTITIONS)

    def __init__(self) -> None:
        super().__init__()
        from awa.client import Client

        reset_machine(self)
        self.gates: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.executing: dict[str, int] = {q: 0 for q in self.pq.physical_queues}
        self.overshoots: list[str] = []
        self.client = Client(self.database_url)
        gates, lock, executing, overshoots = self.gates, self.lock, self.executing, self.overshoots

        @self.client.task("hold", queue=self.pq.logical_queue)
        def hold(job):
            with lock:
                gate = gates.setdefault(job.id, threading.Event())
                executing[job.queue] += 1
                problem = self.over_cap(executing)
                if problem:
                    overshoots.append(problem)
            try:
                gate.wait(20)
            finally:
                with lock:
                    executing[job.queue] -= 1

        configs = [self.pq.shared_queue_config(CAP, claim_batch_size=BATCH)] if self.shared else self.pq.queue_configs(
            max_workers_per_partition=CAP, claim_batch_size=BATCH)
        self.client.start(configs, **FAST)
        # Every claim holds at most claim_batch_size slots (specs/ContinuousLoad.tla, TypeOK).
        store = self.client.worker_runtime.store
        inner = store.claim

        async def claim(target, limit, **kw):
            if limit > BATCH:
                with lock:
                    overshoots.append(f"one claim of {limit} slots > claim_batch_size {BATCH}")
            return await inner(target, limit, **kw)

        store.claim = claim

    def teardown(self) -> None:
        with self.lock:
            for gate in self.gates.values():
                gate.set()
            self.gates.clear()
        self.client.shutdown(timeout_ms=2000)
        self.client.close()

    # -- rules ----------------------------------------------------------------------

    @rule(partition=st.integers(0, PARTITIONS - 1), n=st.integers(1, 3))
    def enqueue(self, partition: int, n: int) -> None:
        self.client.insert_many_copy([{"i": i} for i in range(n)], kind="hold", queue=self.pq.queue_for_index(partition))
        self.settle()

    @rule(n=st.integers(1, 3))
    def release(self, n: int) -> None:
        running = sorted(r[0] for r in self.check_conn.execute(
            "SELECT id FROM awa.jobs WHERE state = 'running' ORDER BY id").fetchall())
        with self.lock:
            for job_id in running[:n]:
                self.gates.setdefault(job_id, threading.Event()).set()
        self.settle()

    # -- the oracle -------------------------------------------------------------------

    def counts(self) -> dict[str, tuple[int, int]]:
        rows = self.check_conn.execute(
            "SELECT queue, count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'available') "
            "FROM awa.jobs GROUP BY queue").fetchall()
        got = {q: (0, 0) for q in self.pq.physical_queues}
        got.update({q: (r, a) for q, r, a in rows})
        return got

    def over_cap(self, executing: dict[str, int]) -> str:
        """What is wrong with these handler counts, or ''."""
        if self.shared:
            total = sum(executing.values())
            return f"shared slots: {total} handlers > cap {CAP}: {executing}" if total > CAP else ""
        over = [q for q, n in executing.items() if n > CAP]
        return f"{over[0]}: {executing[over[0]]} handlers > cap {CAP}: {executing}" if over else ""

    def check_cap(self) -> None:
        with self.lock:
            assert not self.overshoots, self.overshoots[0]

    def conserving(self, counts: dict[str, tuple[int, int]]) -> bool:
        if self.shared:
            running = sum(r for r, _ in counts.values())
            waiting = sum(a for _, a in counts.values())
            return running == min(CAP, running + waiting)
        return all(r == min(CAP, r + a) for r, a in counts.values())

    def settle(self) -> None:
        """Poll until the worker is work-conserving; the cap holds at every poll."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            counts = self.counts()
            self.check_cap()
            if self.conserving(counts):
                time.sleep(0.1)  # and it stays so: no extra claim right after
                counts = self.counts()
                self.check_cap()
                if self.conserving(counts):
                    return
            assert time.monotonic() < deadline, f"an idle slot beside waiting work after {SETTLE_S}s: {counts}"
            time.sleep(0.03)

    @invariant()
    def running_within_cap(self) -> None:
        self.check_cap()


@pytest.mark.parametrize("shared", [False, True], ids=["per-partition", "shared-slots"])
def test_running_stays_within_the_cap_and_no_slot_idles_beside_work(database_factory, shared) -> None:
    cls = bind_machine(CapacityMachine, database_factory(migrated=True), shared=shared, _tables=None,
                       name=f"CapacityMachine{'Shared' if shared else 'PerPartition'}")
    try:
        run_state_machine_as_test(cls, settings=machine_settings(examples_scale=0.4, steps=8))
    finally:
        close_machine(cls)


# -- fairness under continuous load (specs/ContinuousLoad.tla, EveryJobClaimed) ------------------------

HOT, COLD = 0, 1
#: Hot jobs that may start after a cold job was committed, before it starts. The
#: spec's fairness is random(): every claim statement that sees the cold lane puts
#: it first with probability 1/2 (two lanes) and then takes the cold job. A claim
#: takes at most CAP jobs, and at most two claims' worth (one in flight at the
#: commit, one dispatched but not started) saw no cold job; so a correct worker
#: exceeds the bound with probability at most 2**-(BOUND/CAP - 2) = 2**-30.
STARVATION_BOUND = 64


class StarvationMachine(RuleBasedStateMachine):
    """Shared slots with a hot partition that never runs dry: every cold job starts
    before STARVATION_BOUND more hot jobs do (a bounded EveryJobClaimed)."""

    database_url = ""
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _tables: list[str] | None = None
    pq = PartitionedQueue("fair", PARTITIONS)

    def __init__(self) -> None:
        super().__init__()
        from awa.client import Client

        reset_machine(self)
        self.lock = threading.Lock()
        self.hot_started = 0
        self.cold_started: dict[int, int] = {}  # cold job id -> hot starts before it started
        self.cold_marks: dict[int, int] = {}  # cold job id -> hot starts when its insert returned
        self.client = Client(self.database_url)
        hot_queue = self.pq.queue_for_index(HOT)

        @self.client.task("quick", queue=self.pq.logical_queue)
        def quick(job):
            with self.lock:
                if job.queue == hot_queue:
                    self.hot_started += 1
                else:
                    self.cold_started[job.id] = self.hot_started

        self.client.start([self.pq.shared_queue_config(CAP)], **FAST)

    def teardown(self) -> None:
        self.client.shutdown(timeout_ms=2000)
        self.client.close()

    def hot_waiting(self) -> int:
        return self.check_conn.execute(
            "SELECT count(*) FROM awa.jobs WHERE queue = %s AND state = 'available'",
            (self.pq.queue_for_index(HOT),)).fetchone()[0]

    @rule(n=st.integers(1, 2 * STARVATION_BOUND))
    def produce_hot(self, n: int) -> None:
        self.client.insert_many_copy([{"i": i} for i in range(n)], kind="quick", queue=self.pq.queue_for_index(HOT))

    @rule(extra=st.integers(0, STARVATION_BOUND))
    def produce_cold_behind_a_hot_backlog(self, extra: int) -> None:
        """A cold job while the hot partition has more than the bound waiting."""
        backlog = 2 * STARVATION_BOUND + extra
        self.client.insert_many_copy([{"i": i} for i in range(backlog)], kind="quick",
                                     queue=self.pq.queue_for_index(HOT))
        (job,) = self.client.insert_many_copy([{"cold": True}], kind="quick", queue=self.pq.queue_for_index(COLD))
        with self.lock:
            self.cold_marks[job.id] = self.hot_started
        assert self.hot_waiting() > STARVATION_BOUND // 2, "the hot backlog drained before the check"
        deadline = time.monotonic() + SETTLE_S
        while True:
            self.check_bound()
            with self.lock:
                if job.id in self.cold_started:
                    return
            assert time.monotonic() < deadline, f"cold job {job.id} not started after {SETTLE_S}s"
            time.sleep(0.005)

    @invariant()
    def check_bound(self) -> None:
        with self.lock:
            for job_id, mark in self.cold_marks.items():
                hot_since = self.cold_started.get(job_id, self.hot_started) - mark
                assert hot_since <= STARVATION_BOUND, (
                    f"cold job {job_id} waited while {hot_since} hot jobs started (bound {STARVATION_BOUND})")


def test_a_hot_partition_never_starves_a_cold_one_under_shared_slots(database_factory) -> None:
    cls = bind_machine(StarvationMachine, database_factory(migrated=True), _tables=None)
    try:
        run_state_machine_as_test(cls, settings=machine_settings(examples_scale=0.2, steps=5))
    finally:
        close_machine(cls)
