"""Lazy lane numbering (ADR 0028, specs/ProducersLazy.tla) on PostgreSQL.

A single insert writes its job and a ``lane_pending`` row and takes no lane
lock; whoever next holds the lane's enqueue head (a claim, a COPY
reservation, a promotion, a width change) numbers the committed pending rows
first, in ``pending_id`` order. These tests pin the guarantees of the ADR
one by one with real concurrent transactions.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pytest

from awa.client import Client
from awa.storage.models import JobState


def _lane_numbers(conn: psycopg.Connection, queue: str) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT lane_seq FROM awa.jobs WHERE queue = %s AND lane_seq IS NOT NULL ORDER BY lane_seq", (queue,))]


def test_an_open_single_insert_blocks_no_producer_and_holds_back_only_itself(database_url, conn):
    with Client(database_url) as client, psycopg.connect(database_url) as open_tx, \
            psycopg.connect(database_url) as other:
        client.insert({"n": 0}, kind="k", queue="q")  # creates the lane's head
        early = client.insert({"n": 1}, kind="k", queue="q", conn=open_tx)  # stays open
        other.execute("SET lock_timeout = '2s'")
        late = client.insert({"n": 2}, kind="k", queue="q", conn=other)  # would wait on a head lock
        other.commit()
        claimed = client.claim(["q"], 10)
        # The open transaction's row is not numbered: nothing after it waits.
        assert [j.args["n"] for j in claimed] == [0, 2]
        assert [j.lane_seq for j in claimed] == [1, 2]
        open_tx.commit()
        [last] = client.claim(["q"], 10)
        assert (last.id, last.lane_seq) == (early.id, 3) and late.id != early.id
        assert _lane_numbers(conn, "q") == [1, 2, 3]


def test_rolled_back_single_inserts_are_never_numbered(database_url, conn):
    with Client(database_url) as client:
        with psycopg.connect(database_url) as tx:
            client.insert({"n": 1}, kind="k", queue="q", conn=tx)
            tx.rollback()
        with psycopg.connect(database_url) as tx:
            client.insert({"n": 2}, kind="k", queue="q", conn=tx)
            tx.execute("SAVEPOINT s")
            client.insert({"n": 3}, kind="k", queue="q", conn=tx)
            tx.execute("ROLLBACK TO SAVEPOINT s")
            client.insert({"n": 4}, kind="k", queue="q", conn=tx)
            tx.commit()
        claimed = client.claim(["q"], 10)
        assert [(j.args["n"], j.lane_seq) for j in claimed] == [(2, 1), (4, 2)]
        assert conn.execute("SELECT count(*) FROM awa.lane_pending").fetchone()[0] == 0
        assert conn.execute("SELECT next_seq FROM awa.enqueue_heads WHERE queue = 'q'").fetchone()[0] == 3


def test_a_copy_numbers_committed_single_inserts_before_its_own_rows(database_url, conn):
    with Client(database_url) as client:
        single = client.insert({"n": 1}, kind="k", queue="q", ordering_key="acct")
        batch = client.insert_many_copy([{"n": 2}, {"n": 3}], kind="k", opts=[{"queue": "q", "ordering_key": "acct"}] * 2)
        # The COPY numbered the pending row first, then reserved after it.
        assert client.get_job(single.id).lane_seq == 1 and [j.lane_seq for j in batch] == [2, 3]
        assert [j.args["n"] for j in client.claim(["q"], 10)] == [1, 2, 3]


def test_a_claim_skips_sequencing_while_a_copy_holds_the_head(database_url, conn):
    with Client(database_url) as client, psycopg.connect(database_url) as copy_tx:
        first = client.insert({"n": 1}, kind="k", queue="q")
        client.insert_many_copy([{"n": 2}], kind="k", queue="q", conn=copy_tx)  # head held, open
        late = client.insert({"n": 3}, kind="k", queue="q")  # committed after the reservation
        # The COPY numbered the first single insert in its own transaction,
        # so nothing here is claimable until it ends (the cost the ADR and
        # ProducersLazyLongCopy.cfg state), and the claim does not wait.
        assert client.claim(["q"], 10) == []
        copy_tx.commit()
        claimed = client.claim(["q"], 10)
        assert [(j.args["n"], j.lane_seq) for j in claimed] == [(1, 1), (2, 2), (3, 3)]
        assert (claimed[0].id, claimed[2].id) == (first.id, late.id)


def test_cancelling_a_pending_job_leaves_no_hole(database_url, conn):
    with Client(database_url) as client:
        a = client.insert({"n": 1}, kind="k", queue="q")
        b = client.insert({"n": 2}, kind="k", queue="q")
        assert [s.available for s in client.queue_stats("q")] == [2]
        assert client.cancel_job(a.id).state is JobState.CANCELLED
        assert [s.available for s in client.queue_stats("q")] == [1]
        assert [(j.id, j.lane_seq) for j in client.claim(["q"], 10)] == [(b.id, 1)]
        heads = conn.execute("SELECT e.next_seq, c.claim_seq, c.holes FROM awa.enqueue_heads e "
                             "JOIN awa.claim_heads c USING (queue, priority, enqueue_shard)").fetchall()
        assert heads == [(2, 1, 0)]
        assert [s.available for s in client.queue_stats("q")] == [0]


def test_pending_jobs_are_listed_and_counted_as_available(database_url):
    with Client(database_url) as client:
        jobs = [client.insert({"n": i}, kind="k", queue="q") for i in range(3)]
        listed = client.list_jobs(state=JobState.AVAILABLE, queue="q")
        assert sorted(j.id for j in listed) == sorted(j.id for j in jobs)
        [stat] = client.queue_stats("q")
        assert stat.available == 3 and stat.oldest_available_age is not None


def test_a_wakeup_is_sent_only_when_the_lane_looked_empty(database_url):
    with Client(database_url) as client, psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{client.notify_channel}"')
        client.insert({"n": 1}, kind="k", queue="q")
        client.insert({"n": 2}, kind="k", queue="q")  # the lane holds a pending job
        got = [n.payload for n in listener.notifies(timeout=0.5, stop_after=5)]
        assert got == ["q"]
        client.claim(["q"], 10)
        client.insert({"n": 3}, kind="k", queue="q")  # drained lane: wake again
        assert [n.payload for n in listener.notifies(timeout=0.5, stop_after=5)] == ["q"]


def test_promotion_numbers_committed_single_inserts_first(database_url):
    with Client(database_url) as client:
        due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=300)
        scheduled = client.insert({"n": 2}, kind="k", queue="q", run_at=due)
        single = client.insert({"n": 1}, kind="k", queue="q")
        time.sleep(0.4)
        assert client.promote_due() == 1
        assert client.get_job(single.id).lane_seq == 1 and client.get_job(scheduled.id).lane_seq == 2
        assert [j.args["n"] for j in client.claim(["q"], 10)] == [1, 2]


def test_a_width_change_numbers_pending_jobs_before_it_marks(database_url, conn):
    with Client(database_url) as client:
        pq = client.partitioned_queue("wide", 2)
        key = next(k for k in (f"k{i}" for i in range(100)) if pq.queue_for_key(k) == "wide__p1")
        old = [client.insert({"n": i}, kind="k", **pq.route_by_key(key)) for i in range(2)]
        assert client.repartition("wide", 1)["changed"]
        marks = conn.execute("SELECT queue, mark FROM awa.partition_marks WHERE mark > 0").fetchall()
        assert marks == [(old[0].queue, 2)]
        assert conn.execute("SELECT count(*) FROM awa.lane_pending").fetchone()[0] == 0
        new = client.insert({"n": 9}, kind="k", **client.partitioned_queue("wide").route_by_key(key))
        order = []
        for _ in range(10):
            order += [j.id for j in client.claim(["wide", "wide__p1"], 10)]
            client.lift_fences("wide")
        assert order == [old[0].id, old[1].id, new.id]


def test_pending_rows_are_numbered_in_insert_order_not_job_id_order(database_url):
    # Each session takes job ids in cached blocks of 1000, so ids are not in
    # time order across sessions: A's second job has a smaller id than B's.
    with Client(database_url) as client, psycopg.connect(database_url, autocommit=True) as a, \
            psycopg.connect(database_url, autocommit=True) as b:
        first = client.insert({"n": 1}, kind="k", queue="q", ordering_key="acct", conn=a)
        second = client.insert({"n": 2}, kind="k", queue="q", ordering_key="acct", conn=b)
        third = client.insert({"n": 3}, kind="k", queue="q", ordering_key="acct", conn=a)
        assert first.id < third.id < second.id
        claimed = client.claim(["q"], 10)
        assert [j.args["n"] for j in claimed] == [1, 2, 3] and [j.lane_seq for j in claimed] == [1, 2, 3]


def test_a_claim_never_numbers_a_lane_whose_head_a_copy_holds(database_url, conn):
    with Client(database_url) as client, psycopg.connect(database_url) as copy_tx:
        client.insert({"n": 0}, kind="k", queue="q")
        client.claim(["q"], 10)
        client.insert_many_copy([{"n": 1}], kind="k", queue="q", conn=copy_tx)  # head held, open
        client.insert({"n": 2}, kind="k", queue="q")  # committed after the reservation
        result: list = []
        worker = threading.Thread(target=lambda: result.append(client.claim(["q"], 10)), daemon=True)
        worker.start()
        worker.join(1.0)
        copy_tx.commit()
        worker.join(10)
        assert result == [[]], "the claim waited for the COPY or numbered behind its back"
        # Every number given once, densely: the COPY's 2, then the single insert's 3.
        assert [(j.args["n"], j.lane_seq) for j in client.claim(["q"], 10)] == [(1, 2), (2, 3)]
        assert _lane_numbers(conn, "q") == [1, 2, 3]
