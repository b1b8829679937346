"""Truly concurrent producers and claimers on separate connections (threads).

Properties (spec: commit-ordered lane sequences, NoJobLost, ClaimOrderFifo):

* an observer's every snapshot sees, per lane, exactly the numbers 1..n: a
  transaction that commits later never shows a smaller lane number, so no
  hole is ever visible (the enqueue head row lock is held until commit);
* each claimer sees each lane's numbers strictly increasing, and no job is
  claimed twice across claimers;
* after the producers finish, draining claims every job exactly once (the
  claim cursor never skipped a job whose producer committed late);
* each producer's own jobs in one lane carry increasing numbers in its commit
  order, and lane heads end at n + 1.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from awa.client import Client
from awa.storage.ops import Copy, Result, TxId
from awa.routing import PartitionedQueue
from tests.machines._support import machine_settings, reset_database, user_tables

pytestmark = pytest.mark.machines

QUEUE = "conc"
Lane = tuple[str, int, int]

keys = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", "f", b"\x00", ""]))
batches = st.lists(st.lists(keys, min_size=1, max_size=25), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def concurrent_db(database_factory) -> str:
    return database_factory(migrated=True)


class Failure:
    """Collects assertion failures raised in threads (pytest only sees the main thread)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def add(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _run_thread(target, failure: Failure, *args) -> threading.Thread:
    def body() -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            failure.add(f"{target.__name__}: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def run_scenario(url: str, producers, partitions: int, shards: int, claimers: int, client_for=Client) -> list[str]:
    """Run producers, claimers and an observer at once; the property violations found."""
    with psycopg.connect(url, autocommit=True) as admin:
        reset_database(admin, user_tables(admin))
        pq = PartitionedQueue(QUEUE, partitions)
        setup = Client(admin)
        for queue in pq.physical_queues:
            setup.set_enqueue_shards(queue, shards)

    failure = Failure()
    # producers + claimers + observer + this thread
    start = threading.Barrier(len(producers) + claimers + 2, timeout=30)
    producers_done = threading.Event()
    produced: list[list[tuple[int, Lane, int]]] = [[] for _ in producers]  # (job id, lane, seq) in commit order
    claimed: list[list[tuple[int, Lane, int]]] = [[] for _ in range(claimers)]

    def produce(index: int, plan: list[list]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            client = client_for(conn)
            start.wait()
            for batch_no, batch in enumerate(plan):
                opts = [pq.route_by_key(k) if k is not None else {"queue": pq.queue_for_index(batch_no + i), "ordering_key": None}
                        for i, k in enumerate(batch)]
                jobs = client.insert_many_copy([{"p": index}] * len(batch), kind="conc", opts=opts)
                produced[index].extend((j.id, j.lane, j.lane_seq) for j in jobs)
            client.close()

    def claim(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            client = Client(conn)
            start.wait()
            limit = 1 + index * 3
            while True:
                done = producers_done.is_set()
                got = client.claim(pq.physical_queues, limit)
                claimed[index].extend((j.id, j.lane, j.lane_seq) for j in got)
                if done and not got:
                    return

    def observe() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            start.wait()
            while True:
                done = producers_done.is_set()
                seen: dict[Lane, list[int]] = defaultdict(list)
                for q, p, s, seq in conn.execute("SELECT queue, priority, enqueue_shard, lane_seq FROM awa.jobs"):
                    seen[(q, p, s)].append(seq)
                for lane, seqs in seen.items():
                    seqs.sort()
                    if seqs != list(range(1, len(seqs) + 1)):
                        failure.add(f"observer: lane {lane} shows a hole: {seqs[:40]}")
                        return
                if done:
                    return

    threads = [_run_thread(produce, failure, i, plan) for i, plan in enumerate(producers)]
    threads += [_run_thread(claim, failure, i) for i in range(claimers)]
    observer = _run_thread(observe, failure)
    start.wait()
    for t in threads[: len(producers)]:
        t.join(60)
    producers_done.set()
    for t in threads[len(producers):] + [observer]:
        t.join(60)
    if any(t.is_alive() for t in threads + [observer]):
        return ["a thread hung"]
    errors = list(failure.errors)

    all_produced = {job_id: (lane, seq) for rows in produced for job_id, lane, seq in rows}
    if len(all_produced) != sum(len(b) for plan in producers for b in plan):
        errors.append("producers got back fewer jobs than they sent")
    # Each producer: its own jobs in a lane are numbered in its commit order.
    for index, rows in enumerate(produced):
        last: dict[Lane, int] = {}
        for _, lane, seq in rows:
            if seq <= last.get(lane, 0):
                errors.append(f"producer {index}: lane {lane} went {last.get(lane)} -> {seq}")
            last[lane] = seq
    # Lanes hold exactly 1..n, and the head points just past them.
    per_lane: dict[Lane, list[int]] = defaultdict(list)
    for lane, seq in all_produced.values():
        per_lane[lane].append(seq)
    with psycopg.connect(url, autocommit=True) as conn:
        heads = {(q, p, s): n for q, p, s, n in conn.execute("SELECT queue, priority, enqueue_shard, next_seq FROM awa.enqueue_heads")}
    for lane, seqs in per_lane.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)) or heads.get(lane) != len(seqs) + 1:
            errors.append(f"lane {lane}: numbers {sorted(seqs)[:20]}, head {heads.get(lane)}")
    # Claims: strictly increasing per lane per claimer, each job exactly once.
    every_claim = [job_id for rows in claimed for job_id, _, _ in rows]
    if len(every_claim) != len(set(every_claim)):
        errors.append("a job was claimed twice")
    if set(every_claim) != set(all_produced):
        lost = sorted(set(all_produced) - set(every_claim))
        errors.append(f"jobs never claimed (lost): {lost[:10]}")
    for index, rows in enumerate(claimed):
        last = {}
        for _, lane, seq in rows:
            if seq <= last.get(lane, 0):
                errors.append(f"claimer {index}: lane {lane} claimed {seq} after {last.get(lane)}")
            last[lane] = seq
    return errors


@given(
    producers=st.lists(batches, min_size=2, max_size=3),
    partitions=st.integers(1, 3),
    shards=st.integers(1, 4),
    claimers=st.integers(1, 2),
)
@machine_settings()
def test_concurrent_copy_keeps_lanes_commit_ordered(concurrent_db, producers, partitions, shards, claimers) -> None:
    errors = run_scenario(concurrent_db, producers, partitions, shards, claimers)
    assert not errors, errors


class ReserveOutsideTransaction(Client):
    """Broken on purpose: lane numbers are reserved on a separate autocommit
    connection, so the head row lock is gone before the rows commit and a
    later committer can hold smaller numbers. The property must notice."""

    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__(conn)
        self._side = psycopg.connect(conn.info.dsn, autocommit=True)

    def close(self) -> None:
        self._side.close()
        super().close()

    def _drive(self, op, conn=None, *_how):  # tx, checked, writes: this driver has its own
        if conn is not None:
            return super()._drive(op, conn)
        conn = self.executor.conn
        assert conn is not None
        with conn.transaction():
            try:
                step = next(op)
                while True:
                    if isinstance(step, Copy):
                        # Widen the window between reserve and commit, by a different
                        # amount each time, so commits overtake each other often.
                        time.sleep(random.uniform(0.0, 0.02))
                        with conn.cursor() as cur, cur.copy(step.sql) as copy:
                            copy.write(step.data)
                        result = None
                    elif isinstance(step, TxId):
                        result = None
                    else:
                        target = self._side if "enqueue_reserve" in step.sql else conn
                        cur = target.execute(step.sql, step.params)
                        names = [c.name for c in cur.description] if cur.description else []
                        result = Result(names, cur.fetchall() if cur.description else [], cur.rowcount)
                    step = op.send(result)
            except StopIteration as done:
                return done.value


def test_lanes_numbered_outside_the_commit_are_caught(concurrent_db) -> None:
    # The broken client is only caught when two commits overtake each other
    # while someone looks: a race, so up to three runs (one CI run with a fixed
    # 10 ms window saw none). A correct detector finds it in the first run
    # nearly always; a blind one never does.
    producers = [[["a", "b", None, "c"]] * 8 for _ in range(3)]
    for _ in range(3):
        errors = run_scenario(concurrent_db, producers, 1, 1, 1, client_for=ReserveOutsideTransaction)
        if errors:
            break
    print("violations found:", errors[:3])
    assert any("hole" in e or "lost" in e or "numbers" in e for e in errors), errors


def test_a_waiting_batch_already_holds_every_lane_before_the_one_it_waits_for(concurrent_db) -> None:
    """LockOrderDeadlockFree (specs/ConcurrentProducers.tla), pinned: a batch
    locks its lanes' enqueue heads in lane order whatever the order of its
    jobs. One transaction holds shard 1 of a 2-shard queue; a batch listing a
    job of shard 1 before one of shard 0 must, while it waits, already hold
    shard 0. Taken in batch order it would hold nothing, and two batches
    listing the lanes in opposite orders could deadlock."""
    from awa.routing.hashes import shard_for_ordering_key

    with psycopg.connect(concurrent_db, autocommit=True) as conn:
        reset_database(conn, user_tables(conn))
    key = {shard_for_ordering_key(k.encode(), 2): k for k in map(str, range(50))}
    failure = Failure()
    with Client(concurrent_db) as client, psycopg.connect(concurrent_db) as hold, \
            psycopg.connect(concurrent_db) as probe:
        client.set_enqueue_shards(QUEUE, 2)
        client.insert({"n": 0}, kind="t", queue=QUEUE, ordering_key=key[1], conn=hold)  # holds shard 1's head
        batch = _run_thread(
            lambda: client.insert_many_copy([{"n": 1}, {"n": 2}], kind="t", queue=QUEUE,
                                            opts=[{"ordering_key": key[1]}, {"ordering_key": key[0]}]), failure)
        deadline = time.monotonic() + 10
        while not probe.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND datname = current_database()").fetchone()[0]:
            assert time.monotonic() < deadline, "the batch never waited for the held lane"
            probe.rollback()
            time.sleep(0.02)
        probe.rollback()
        probe.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # shard 0 is the waiting batch's
            client.insert({"n": 3}, kind="t", queue=QUEUE, ordering_key=key[0], conn=probe)
        probe.rollback()
        hold.commit()
        batch.join(timeout=30)
    assert not failure.errors, failure.errors
