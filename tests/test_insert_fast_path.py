"""The single insert's one-statement fast path (ADR 0035) against insert_job.

``Client.insert`` sends ``insert_job_fast.sql`` and falls back to the
``insert_job`` function when it writes nothing. The two are written
separately (one is a plain statement, the other PL/pgSQL), so these tests
hold them to the same outcome: the same job and ``lane_pending`` rows, the
same lane numbers after claims, and a wake-up in the same cases.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awa.client import Client
from awa.storage.migrate import migrate
from awa.storage.queries import query

QUEUES = ("fq", "fq__p1")
JOB_COLUMNS = ("queue, priority, enqueue_shard, state, lane_seq, kind, args, tags, metadata, ordering_key, "
               "concurrency_key, max_attempts")


def _params(schema: str, op: tuple, expected: int) -> dict:
    _, qi, priority, shard, key, ckey, tags, meta, i = op
    return {
        "queue": QUEUES[qi], "expected": expected, "priority": priority, "shard": shard, "kind": "k",
        "args": json.dumps({"i": i}), "max_attempts": 3, "tags": tags, "metadata": meta, "ordering_key": key,
        "run_at": None, "now": None, "channel": f"{schema}_jobs", "concurrency_key": ckey, "mark_fast": True,
    }


class Side:
    def __init__(self, url: str, schema: str, fast: bool) -> None:
        self.schema, self.fast = schema, fast
        self.conn = psycopg.connect(url, autocommit=True)
        self.woken: list[str] = []
        self.conn.add_notify_handler(lambda n: self.woken.append(n.payload))
        self.conn.execute(f"LISTEN {schema}_jobs")
        self.client = Client(url, schema=schema)

    def insert(self, op: tuple, expected: int) -> tuple | None:
        params = _params(self.schema, op, expected)
        if self.fast:
            row = self.conn.execute(query(self.schema, "insert_job_fast"), params).fetchone()
            if row[0] is not None:
                assert row[2] == bool(self.woken), "the notified column says what was sent"
                # Client.insert takes the lane and state from what it sent: the row must agree
                written = self.conn.execute(f"SELECT queue, enqueue_shard, state FROM {self.schema}.jobs WHERE id = %s",
                                            [row[0]]).fetchone()
                assert written == (params["queue"], params["shard"], "available")
                return written
            assert row == (None, None, None) and not self.woken  # wrote and sent nothing
        row = self.conn.execute(query(self.schema, "insert_job"), params).fetchone()
        if row is not None:
            assert row[5] is False  # not registered
        return None if row is None else row[1:4]

    def rows(self) -> tuple[list, list]:
        jobs = self.conn.execute(f"SELECT {JOB_COLUMNS} FROM {self.schema}.jobs ORDER BY (args->>'i')::int").fetchall()
        pending = self.conn.execute(
            f"SELECT p.queue, p.priority, p.enqueue_shard, (j.args->>'i')::int FROM {self.schema}.lane_pending AS p "
            f"JOIN {self.schema}.jobs AS j ON j.id = p.job_id ORDER BY p.pending_id").fetchall()
        return jobs, pending

    def close(self) -> None:
        self.client.close()
        self.conn.close()


_insert = st.tuples(
    st.just("insert"), st.integers(0, 1), st.integers(1, 4), st.integers(0, 1),
    st.sampled_from([None, b"a", b"b"]), st.sampled_from([None, b"c"]),
    st.sampled_from([None, ["t"]]), st.sampled_from([None, '{"m": 1}']), st.just(0),
)
_ops = st.lists(st.one_of(_insert, _insert, st.tuples(st.just("claim"), st.integers(0, 1)),
                          st.tuples(st.just("shards"), st.integers(0, 1), st.integers(1, 2)),
                          st.tuples(st.just("stale"), _insert)), min_size=1, max_size=25)


@settings(max_examples=30)
@given(ops=_ops)
def test_the_fast_statement_writes_what_insert_job_writes(database_factory, ops):
    url = database_factory(migrated=False)
    with psycopg.connect(url, autocommit=True) as admin:
        migrate(admin, "fast_s")
        migrate(admin, "slow_s")
    sides = [Side(url, "fast_s", True), Side(url, "slow_s", False)]
    shards = {q: 1 for q in QUEUES}
    try:
        for i, op in enumerate(ops):
            if op[0] == "claim":
                got = [[(j.queue, j.lane_seq, j.args["i"]) for j in s.client.claim([QUEUES[op[1]]], 1)] for s in sides]
                assert got[0] == got[1], (i, op)
                continue
            if op[0] == "shards":
                shards[QUEUES[op[1]]] = op[2]
                for s in sides:
                    s.client.set_enqueue_shards(QUEUES[op[1]], op[2])
                continue
            stale = op[0] == "stale"
            ins = op[1] if stale else op
            ins = (*ins[:3], ins[3] % shards[QUEUES[ins[1]]], *ins[4:8], i)
            expected = shards[QUEUES[ins[1]]] + (1 if stale else 0)
            for s in sides:
                s.woken.clear()
            results = [s.insert(ins, expected) for s in sides]
            assert results[0] == results[1], (i, op)
            assert (results[0] is None) == stale
            assert sides[0].woken == sides[1].woken, (i, op)
        assert sides[0].rows() == sides[1].rows()
    finally:
        for s in sides:
            s.close()
        database_factory.drop(url)


def test_a_registered_logical_queue_is_routed_by_insert_job(database_url):
    # After a width change the database routes a keyed job by the width it has,
    # whatever partition the producer named; the fast statement does not route,
    # so it must leave a registered queue's jobs to insert_job, even into a lane
    # that exists.
    with Client(database_url) as client, psycopg.connect(database_url, autocommit=True) as conn:
        client.set_queue_partitions("rq", 4)
        before = client.insert({"n": 0}, kind="k", queue="rq__p3", ordering_key="key-0")
        assert before.queue == "rq__p3"  # epoch 1: the producer's routing stands
        op = ("insert", 0, 2, before.enqueue_shard, b"key-0", None, None, None, 0)
        row = conn.execute(query("awa", "insert_job_fast"), _params("awa", op, 1) | {"queue": "rq__p3"}).fetchone()
        assert row == (None, None, None)
        assert conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0] == 1
        row = conn.execute(query("awa", "insert_job"), _params("awa", op, 1) | {"queue": "rq__p3"}).fetchone()
        assert row[1] == "rq__p3" and row[5] is True  # insert_job wrote it, and says the queue is registered
        client.repartition("rq", 2)
    with Client(database_url) as fresh:  # knows nothing of the registration yet
        for n in range(1, 5):
            job = fresh.insert({"n": n}, kind="k", queue="rq__p3", ordering_key="key-0")
            assert job.queue in ("rq", "rq__p1"), job.queue  # rerouted into the new width


@pytest.mark.parametrize("run_at_offset_s", [None, -5, 3600])
def test_client_insert_takes_either_path_with_the_same_result(database_url, run_at_offset_s):
    import datetime as dt

    run_at = None if run_at_offset_s is None else dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=run_at_offset_s)
    with Client(database_url) as client:
        first = client.insert({"n": 1}, kind="k", queue="pq", run_at=run_at)   # creates queue and lane
        second = client.insert({"n": 2}, kind="k", queue="pq", run_at=run_at)  # the fast path when due now
        assert [first.state, second.state] == [second.state] * 2
        fetched = [client.get_job(j.id) for j in (first, second)]
        assert [(j.queue, j.state, j.args) for j in fetched] == [(j.queue, j.state, j.args) for j in (first, second)]


# -- queues.fast_inserts: the fast statement's cache of "not registered" (ADR 0040) --

KEY_SQL = "SELECT pg_advisory_xact_lock(hashtext('\"awa\".queue_partitions'), hashtext(%s))"


def _fast_flag(conn: psycopg.Connection, queue: str) -> bool | None:
    row = conn.execute("SELECT fast_inserts FROM awa.queues WHERE name = %s", [queue]).fetchone()
    return None if row is None else row[0]


def _fast_writes(conn: psycopg.Connection, queue: str) -> bool:
    op = ("insert", 0, 2, 0, None, None, None, None, 0)
    row = conn.execute(query("awa", "insert_job_fast"), _params("awa", op, 1) | {"queue": queue}).fetchone()
    return row[0] is not None


def test_a_slow_insert_sets_the_flag_and_a_registration_clears_it(database_url):
    with Client(database_url) as client, psycopg.connect(database_url, autocommit=True) as conn:
        client.insert({"n": 0}, kind="k", queue="fl__p1")  # creates the queue and lane: insert_job
        assert _fast_flag(conn, "fl__p1") is True
        assert _fast_writes(conn, "fl__p1")
        client.set_queue_partitions("fl", 2)
        assert _fast_flag(conn, "fl__p1") is False
        assert not _fast_writes(conn, "fl__p1")  # a registered queue's jobs go through insert_job
        job = client.insert({"n": 1}, kind="k", queue="fl__p1", ordering_key="key-1")
        assert job.queue == "fl__p1" and _fast_flag(conn, "fl__p1") is False  # and it stays off
        assert conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0] == 3


def test_a_registration_in_flight_keeps_the_flag_off(database_url):
    # The registration has inserted its row (its trigger holds the key) and not
    # committed: the slow insert meanwhile must neither wait nor set the flag,
    # which the registration could no longer clear.
    with Client(database_url) as client, psycopg.connect(database_url) as registrar, \
            psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '5s'")
        registrar.execute("INSERT INTO awa.queue_partitions (logical_queue, partitions) VALUES ('rf', 2)")
        job = client.insert({"n": 0}, kind="k", queue="rf__p1")
        assert job.queue == "rf__p1"
        assert _fast_flag(conn, "rf__p1") is False
        registrar.commit()
        assert _fast_flag(conn, "rf__p1") is False
        assert not _fast_writes(conn, "rf__p1")


def test_a_held_key_leaves_the_flag_and_nothing_waits(database_url):
    with Client(database_url) as client, psycopg.connect(database_url) as holder, \
            psycopg.connect(database_url, autocommit=True) as conn:
        holder.execute(KEY_SQL, ["hk"])  # a width change or registration of "hk" in progress
        client.insert({"n": 0}, kind="k", queue="hk")
        assert _fast_flag(conn, "hk") is False
        holder.rollback()
        client.insert({"n": 1}, kind="k", queue="hk")  # still slow: this one sets it
        assert _fast_flag(conn, "hk") is True


def test_a_repeatable_read_insert_sets_no_flag(database_url):
    # A snapshot older than a registration must not mark a queue of it.
    with Client(database_url) as client, psycopg.connect(database_url) as tx, \
            psycopg.connect(database_url, autocommit=True) as conn:
        tx.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        tx.execute("SELECT 1")  # the snapshot is taken
        client.set_queue_partitions("rr", 2)
        op = ("insert", 0, 2, 0, None, None, None, None, 0)
        row = tx.execute(query("awa", "insert_job"), _params("awa", op, 1) | {"queue": "rr__p1"}).fetchone()
        assert row[1] == "rr__p1"
        tx.commit()
        assert _fast_flag(conn, "rr__p1") is False
        assert not _fast_writes(conn, "rr__p1")


def test_an_insert_in_a_callers_transaction_locks_no_queue_row(database_url):
    # Marking locks the queue row, and a COPY batch into the queue waits for
    # that lock; inside a caller's transaction it would wait until they commit.
    with Client(database_url) as client, psycopg.connect(database_url) as tx, \
            psycopg.connect(database_url, autocommit=True) as conn:
        client.set_enqueue_shards("ct", 2)  # the queue row exists and is committed
        client.insert({"n": 0}, kind="k", queue="ct", conn=tx)  # a new lane: insert_job
        row = conn.execute("SELECT name FROM awa.queues WHERE name = 'ct' FOR UPDATE NOWAIT").fetchone()
        assert row == ("ct",)
        tx.commit()
        assert _fast_flag(conn, "ct") is False  # left for an insert of the client's own
        client.insert({"n": 1}, kind="k", queue="ct", ordering_key="other-lane")
        client.insert({"n": 2}, kind="k", queue="ct")
        assert _fast_flag(conn, "ct") is True
