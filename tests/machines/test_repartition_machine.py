"""Online repartitioning as a state machine on real PostgreSQL (spec: PartitionedQueueRepartition).

One registered logical queue whose width runs through 1..4 by repartition
steps taken at any point, also while earlier changes drain. Producers insert
keyed jobs (single inserts and COPY) routed by a PartitionedQueue of a width
they may not have refreshed (the database routes with the registered one);
workers claim from any subset of the partitions, also above the width; jobs
complete, or their worker dies and rescue makes them available again; the
lift step runs as a step of its own. The oracle is the spec's history
``outs``: the first hand-out (attempt 1) of every job, in claim order.
After every step:

* PerKeyFIFO: for every key, a job is first handed out only after every job
  of its key that was enqueued (committed) before it;
* NoJobLost: nothing is handed out twice for the first time, and every job
  not yet handed out is available (or scheduled/retryable after a rescue);

* every available job is ahead of its lane's cursor (lane_seq > claim_seq);

and at the end, with every attempt finished and the lift step run, every job
has been handed out (EveryJobHandedOut) and completed. A rule moves a key
twice, 4 -> 2 -> 1, from a drained queue through a middle lane that gets
no job of its own (PartitionedQueueRepartitionTwoMoves), then claims at
width 1.

``test_the_machine_catches_the_naive_switch`` applies the spec's broken
UseFences = FALSE to the database (the change records no fences) and
expects the machine to fail.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from awa.client import Client
from awa.errors import ValidationError
from awa.routing import PartitionedQueue
from awa.worker.partitions import partition_names
from tests.machines._support import machine_settings, reset_database, user_tables

pytestmark = pytest.mark.machines

LOGICAL = "rq"
MAX_WIDTH = 4
ALL = partition_names(LOGICAL, MAX_WIDTH)
KEYS = ["k0", "k1", "k2", "k3", "k5"]
# What workers serve (WidthFollower): partitions 0..span-1 of each registered logical queue.
SPANS_SQL = (Path(__file__).resolve().parents[2] / "awa/storage/sql/queries/partition_spans.sql").read_text(
).replace("__schema__", "awa")
# The key of PartitionedQueueRepartitionTwoMoves: partition 3 at width 4, 1 at width 2, 0 at width 1.
TWO_MOVES_KEY = "k3"
assert [PartitionedQueue(LOGICAL, w).queue_for_key(TWO_MOVES_KEY) for w in (4, 2, 1)] == [ALL[3], ALL[1], ALL[0]]
# The naive switch of ADR 0024 (BrokenNaive): the change records no fence.
NAIVE_FROM = "WHERE EXISTS (SELECT 1 FROM generate_series(0, v_old - 1) AS s(part)"
NAIVE_TO = "WHERE false AND EXISTS (SELECT 1 FROM generate_series(0, v_old - 1) AS s(part)"


def make_machine(url: str, tables: list[str]):
    client = Client(url)

    class RepartitionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.conn = psycopg.connect(url, autocommit=True)
            reset_database(self.conn, tables)
            self.client = client
            client.core._widths.clear()
            self.width = 2
            client.partitioned_queue(LOGICAL, self.width)
            self.producer_width = self.width  # a producer may keep a stale width
            self.order: dict[str, list[int]] = defaultdict(list)  # key -> job ids in commit order
            self.key_of: dict[int, str] = {}
            self.outs: list[int] = []  # first hand-outs, in order
            self.handed: set[int] = set()

        def teardown(self) -> None:
            self.conn.close()

        def _record(self, jobs) -> None:
            for job in jobs:
                if job.attempt == 1:
                    assert job.id not in self.handed, f"job {job.id} handed out twice for the first time"
                    self.handed.add(job.id)
                    self.outs.append(job.id)

        @rule(key=st.sampled_from(KEYS), n=st.integers(1, 3), copy=st.booleans(), refresh=st.booleans())
        def produce(self, key, n, copy, refresh):
            if refresh:
                self.producer_width = self.width
            pq = PartitionedQueue(LOGICAL, self.producer_width)
            if copy:
                jobs = self.client.insert_many_copy([{"k": key}] * n, kind="t", opts=[pq.route_by_key(key)] * n)
            else:
                jobs = [self.client.insert({"k": key}, kind="t", queue=pq.queue_for_key(key), ordering_key=key)
                        for _ in range(n)]
            for job in jobs:
                self.order[key].append(job.id)
                self.key_of[job.id] = key

        @rule(copy=st.booleans())
        def produce_every_key(self, copy):
            """One job of every key: a backlog in many lanes at once."""
            pq = PartitionedQueue(LOGICAL, self.producer_width)
            if copy:
                jobs = self.client.insert_many_copy([{"k": k} for k in KEYS], kind="t",
                                                    opts=[pq.route_by_key(k) for k in KEYS])
            else:
                jobs = [self.client.insert({"k": k}, kind="t", queue=pq.queue_for_key(k), ordering_key=k)
                        for k in KEYS]
            for key, job in zip(KEYS, jobs):
                self.order[key].append(job.id)
                self.key_of[job.id] = key

        @rule(parts=st.sets(st.integers(0, MAX_WIDTH - 1), min_size=1), limit=st.integers(1, 3))
        def claim(self, parts, limit):
            self._record(self.client.claim([ALL[p] for p in sorted(parts)], limit))

        @rule(width=st.integers(1, MAX_WIDTH))
        def repartition(self, width):
            done = self.client.repartition(LOGICAL, width)
            assert done["changed"] == (width != self.width)
            self.width = width

        @rule(lift_between=st.booleans())
        def move_twice(self, lift_between):
            """PartitionedQueueRepartitionTwoMoves: a job of TWO_MOVES_KEY at width 4, changes 4 -> 2 -> 1
            whose middle lane gets no job of its own, the lift step, a second job of the key, a claim at
            width 1."""
            key = TWO_MOVES_KEY
            self._drain()
            self.repartition(MAX_WIDTH)
            self._drain()
            self.produce(key, 1, copy=False, refresh=True)
            self.repartition(2)
            if lift_between:
                self.lift()
            self.repartition(1)
            self.lift()
            self.produce(key, 1, copy=False, refresh=True)
            self._record(self.client.claim([ALL[0]], 100))

        @rule()
        def change_during_open_producer(self):
            """PartitionedQueueRepartitionStaleProducer: a producer's transaction (a job of the two-moves
            key, routed at width 2) is open while a change to width 1 is asked for: the change must wait
            (busy) until it commits; then a second job of the key and a claim at width 1."""
            key = TWO_MOVES_KEY
            self._drain()
            self.repartition(2)
            self._drain()
            with psycopg.connect(url) as producer:
                job = self.client.insert({"k": key}, kind="t", queue=PartitionedQueue(LOGICAL, 2).queue_for_key(key),
                                         ordering_key=key, conn=producer)
                try:
                    self.client.repartition(LOGICAL, 1, lock_timeout_ms=50, attempts=1)
                    self.width = 1
                except ValidationError:
                    pass
            self.order[key].append(job.id)
            self.key_of[job.id] = key
            self.repartition(1)
            self.lift()
            self.produce(key, 1, copy=False, refresh=True)
            self._record(self.client.claim([ALL[0]], 100))

        @rule()
        def lift(self):
            self.client.lift_fences(LOGICAL)

        def _running(self):
            return self.conn.execute("SELECT id, run_lease FROM awa.jobs WHERE state = 'running' ORDER BY id").fetchall()

        # Which running job: an index modulo their number, so the draws do not
        # depend on what the claims (random among equal lanes) took.
        @rule(pick=st.integers(0, 7))
        def complete(self, pick):
            running = self._running()
            if running:
                job_id, lease = running[pick % len(running)]
                assert self.client.complete(job_id, lease)

        @rule(pick=st.integers(0, 7))
        def crash_and_rescue(self, pick):
            running = self._running()
            if not running:
                return
            job_id, _lease = running[pick % len(running)]
            self.conn.execute("UPDATE awa.jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [job_id])
            assert len(self.client.rescue_expired(heartbeat_timeout=60)) == 1
            self.conn.execute("UPDATE awa.jobs SET run_at = now() WHERE id = %s AND state = 'retryable'", [job_id])
            self.client.promote_due()

        @invariant()
        def per_key_fifo(self):
            position = {job_id: i for i, job_id in enumerate(self.outs)}
            for key, ids in self.order.items():
                for a_index, a in enumerate(ids):
                    for b in ids[a_index + 1:]:
                        if b in position:
                            assert a in position and position[a] < position[b], (
                                f"key {key}: job {b} handed out before the earlier job {a} "
                                f"(hand-outs {[(j, self.key_of[j]) for j in self.outs]})")

        @invariant()
        def no_job_lost(self):
            rows = self.conn.execute("SELECT id, state::text FROM awa.jobs").fetchall()
            assert len(rows) == len(self.key_of)
            for job_id, state in rows:
                if job_id not in self.handed:
                    assert state == "available", f"job {job_id} is {state} but was never handed out"
            behind = self.conn.execute(
                "SELECT j.id, j.lane_seq, c.claim_seq FROM awa.jobs AS j"
                " JOIN awa.claim_heads AS c USING (queue, priority, enqueue_shard)"
                " WHERE j.state = 'available' AND j.lane_seq <= c.claim_seq").fetchall()
            assert not behind, f"available jobs behind their lane's cursor (id, seq, cursor): {behind}"

        def _served(self) -> list[str]:
            """The partitions a worker started now serves (the storage's partition_spans query)."""
            rows = self.conn.execute(SPANS_SQL).fetchall()
            span = next(span for name, _w, _e, span in rows if name == LOGICAL)
            return partition_names(LOGICAL, span)

        def _drain(self) -> None:
            """Finish every attempt and claim everything there is in the partitions a worker serves,
            lifting fences, until nothing moves."""
            for _ in range(50):
                for job_id, lease in self._running():
                    self.client.complete(job_id, lease)
                got = self.client.claim(self._served(), 100)
                self._record(got)
                if not got and self.client.lift_fences(LOGICAL) == 0 and not self._running():
                    break

        def check_end(self) -> None:
            """EveryJobHandedOut: finish every attempt, then claim everything there is."""
            self._drain()
            self.per_key_fifo()
            missing = set(self.key_of) - self.handed
            assert not missing, f"jobs never handed out: {sorted(missing)}"
            unfinished = self.conn.execute("SELECT id, state::text FROM awa.jobs WHERE state <> 'completed'"
                                           ).fetchall()
            assert not unfinished, f"jobs that never completed: {unfinished}"

    class Ended(RepartitionMachine):
        def teardown(self) -> None:
            try:
                self.check_end()
            finally:
                super().teardown()

    return Ended, client


@pytest.fixture(scope="module")
def repartition_db(database_factory) -> str:
    return database_factory(migrated=True)


def _run(url: str, examples_scale: float = 1.0, **overrides) -> None:
    with psycopg.connect(url) as conn:
        tables = user_tables(conn)
    machine, client = make_machine(url, tables)
    try:
        run_state_machine_as_test(machine, settings=machine_settings(examples_scale=examples_scale, deadline=None,
                                                                     **overrides))
    finally:
        client.close()


def test_repartition_machine(repartition_db):
    _run(repartition_db)


def test_the_machine_catches_the_naive_switch(database_factory):
    url = database_factory(migrated=True)
    with psycopg.connect(url, autocommit=True) as conn:
        text = conn.execute("SELECT pg_get_functiondef('awa.repartition(text, integer, integer, integer)'::regprocedure)"
                            ).fetchone()[0]
        assert text.count(NAIVE_FROM) == 1
        conn.execute(text.replace(NAIVE_FROM, NAIVE_TO))
    with pytest.raises(AssertionError, match="handed out before the earlier job"):
        _run(url, examples_scale=8, phases=[Phase.generate])
