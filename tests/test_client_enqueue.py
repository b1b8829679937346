"""Enqueue paths on real PostgreSQL: validation texts, per-job opts, keys, atomicity,
transactional enqueue, NOTIFY and metrics."""

from __future__ import annotations

import asyncio
import re
import datetime as dt
import select
from dataclasses import dataclass

import psycopg
import pytest

from awa.client import AsyncClient, Client, JobState
from awa.errors import ValidationError
from awa.routing import PartitionedQueue, shard_for_ordering_key


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def _count(conn: psycopg.Connection, where: str = "true") -> int:
    conn.rollback()
    return conn.execute(f"SELECT count(*) FROM awa.jobs WHERE {where}").fetchone()[0]


@dataclass
class SendEmail:
    to: str
    subject: str


@dataclass
class SMTPReport:
    n: int


# --------------------------------------------------------------------------
# Validation: exact texts, nothing written
# --------------------------------------------------------------------------

OPTS_ERRORS = [
    ([{"queue": "a"}], "opts length must match jobs length (got 1, expected 2)"),
    ([{"queue": "a"}, 5], "each opts entry must be a dict or None"),
    ([{"queue": "a"}, ["queue"]], "each opts entry must be a dict or None"),
    ([None, {1: "x"}], "opts keys must be strings"),
    ([None, {"priority": 1}], "unsupported opts key 'priority'; expected 'queue' or 'ordering_key'"),
    ([None, {"queue": 7}], "opts queue must be a string"),
    ([None, {"queue": ""}], "opts queue must not be empty"),
]


@pytest.mark.parametrize("opts, message", OPTS_ERRORS)
@pytest.mark.parametrize("method", ["insert_many_copy", "enqueue_many_copy"])
def test_opts_errors_have_exact_texts_and_write_nothing(client, conn, opts, message, method):
    with pytest.raises(ValidationError) as info:
        getattr(client, method)([{"a": 1}, {"a": 2}], kind="k", opts=opts)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    assert _count(conn) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"priority": 0}, "priority must be between 1 and 4, got 0"),
        ({"priority": 5}, "priority must be between 1 and 4, got 5"),
        ({"priority": True}, "priority must be between 1 and 4, got True"),
        ({"max_attempts": 0}, "max_attempts must be between 1 and 1000, got 0"),
        ({"max_attempts": 1001}, "max_attempts must be between 1 and 1000, got 1001"),
        ({"queue": ""}, "queue must not be empty"),
        ({"queue": "q" * 201}, "queue must be at most 200 characters (got 201)"),
        ({"queue": 3}, "queue must be a string, got int"),
        ({"kind": ""}, "kind must not be empty"),
        ({"kind": "k" * 201}, "kind must be at most 200 characters (got 201)"),
        ({"run_at": dt.datetime(2030, 1, 1)}, "run_at must be timezone-aware"),
        ({"ordering_key": 12}, "ordering_key must be bytes-like or str"),
        ({"tags": "abc"}, "tags must be a list of strings"),
        ({"metadata": {"x": object()}}, None),
    ],
)
def test_batch_argument_errors(client, conn, kwargs, message):
    kwargs = {"kind": "k", **kwargs}
    for call in (
        lambda: client.insert({"a": 1}, **kwargs),
        lambda: client.insert_many_copy([{"a": 1}], **kwargs),
        lambda: client.enqueue_many_copy([{"a": 1}], **kwargs),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        if message is not None:
            assert str(info.value) == message
        else:
            assert "metadata is not JSON-serialisable" in str(info.value)
    assert _count(conn) == 0


def test_longest_queue_names_are_accepted(client):
    """192 characters for a base name (room for ``__p32766``), 200 for a partition."""
    job = client.insert({"a": 1}, kind="k" * 200, queue="q" * 192)
    assert job.queue == "q" * 192 and job.kind == "k" * 200
    assert client.insert({"a": 1}, kind="k", queue="q" * 192 + "__p32766").queue == "q" * 192 + "__p32766"
    with pytest.raises(ValidationError, match="at most 192 characters"):
        client.insert({"a": 1}, kind="k", queue="q" * 193)


def test_one_bad_job_anywhere_writes_nothing(client, conn):
    jobs = [{"i": i} for i in range(50)] + [{"bad": {1, 2}}] + [{"i": 99}]
    with pytest.raises(ValidationError) as info:
        client.insert_many_copy(jobs, kind="k")
    assert str(info.value).startswith("args at index 50 are not JSON-serialisable")
    with pytest.raises(ValidationError):
        client.enqueue_many_copy([{"i": 1}, "not args"], kind="k")
    with pytest.raises(ValidationError, match="kind is required when args is a dict"):
        client.enqueue_many_copy([{"i": 1}])
    with pytest.raises(ValidationError, match="must not contain NUL"):
        client.enqueue_many_copy([{"i": 1}, {"s": "a\x00b"}], kind="k")
    assert _count(conn) == 0
    assert conn.execute("SELECT count(*) FROM awa.enqueue_heads").fetchone()[0] == 0


def test_database_error_mid_batch_rolls_back_everything(client, conn):
    # A job id that already exists makes the COPY fail after the lanes were reserved.
    client.enqueue_many_copy([{"i": 0}], kind="k", queue="x")
    with pytest.raises(psycopg.errors.UniqueViolation):
        client.executor.run(_copy_with_duplicate_id(client, conn))
    assert _count(conn) == 1
    assert conn.execute("SELECT next_seq FROM awa.enqueue_heads WHERE queue = 'x'").fetchone()[0] == 2


def _copy_with_duplicate_id(client, conn):
    from awa.storage.ops import Copy, Query

    existing = conn.execute("SELECT id FROM awa.jobs").fetchone()[0]
    conn.rollback()
    yield Query(client.core.q("enqueue_reserve"), {
        "queues": ["x"], "expected": [1], "lane_queue": ["x"], "lane_priority": [2], "lane_shard": [0],
        "lane_count": [1], "run_at": None, "now": None, "id_count": 1, "channel": client.notify_channel,
        "widths": [0],
    })
    yield Copy(client.core.copy_sql(("queue", "kind", "lane_seq", "args", "id")), f"x\tk\t2\t{{}}\t{existing}\n")


# --------------------------------------------------------------------------
# Per-job opts routing
# --------------------------------------------------------------------------


def test_per_job_opts_route_two_jobs_to_two_queues_in_one_call(client, conn):
    jobs = client.insert_many_copy(
        [{"n": 1}, {"n": 2}], kind="k", queue="base", opts=[{"queue": "alpha"}, {"queue": "beta"}]
    )
    assert [j.queue for j in jobs] == ["alpha", "beta"]
    conn.rollback()
    rows = conn.execute("SELECT queue, args->>'n', lane_seq FROM awa.jobs ORDER BY queue").fetchall()
    assert rows == [("alpha", "1", 1), ("beta", "2", 1)]
    assert client.enqueue_metrics()["alpha"].jobs == 1 and "base" not in client.enqueue_metrics()


@pytest.mark.parametrize("shards", [1, 4])
def test_opts_sending_every_job_to_one_other_queue_store_them_there_only(client, conn, shards):
    """Every entry names the same queue (a width-1 route): one lane of that
    queue, nothing in the batch default, metrics under that queue."""
    client.set_enqueue_shards("elsewhere", shards)
    for opts in ([{"queue": "elsewhere"}] * 5, PartitionedQueue("elsewhere", 1).route_by_indexes(range(5))):
        jobs = client.insert_many_copy([{"n": i} for i in range(5)], kind="k", queue="base", opts=opts)
        assert {j.queue for j in jobs} == {"elsewhere"}
        assert len({j.enqueue_shard for j in jobs}) == 1
        assert [j.lane_seq for j in jobs] == sorted(j.lane_seq for j in jobs)
    conn.rollback()
    rows = conn.execute("SELECT queue, count(*) FROM awa.jobs GROUP BY queue").fetchall()
    assert rows == [("elsewhere", 10)]
    assert client.enqueue_metrics()["elsewhere"].jobs == 10 and "base" not in client.enqueue_metrics()


def test_none_opts_entry_and_none_queue_use_batch_default(client):
    jobs = client.insert_many_copy(
        [{"n": 1}, {"n": 2}, {"n": 3}], kind="k", queue="base", opts=[None, {"queue": None}, {"queue": "other"}]
    )
    assert [j.queue for j in jobs] == ["base", "base", "other"]
    assert [j.lane_seq for j in jobs] == [1, 2, 1]


def test_ordering_key_tri_state(client, conn):
    client.set_enqueue_shards("keyed", 8)
    jobs = client.insert_many_copy(
        [{"n": i} for i in range(4)],
        kind="k",
        queue="keyed",
        ordering_key="batch-key",
        opts=[{}, {"ordering_key": None}, {"ordering_key": b"\x00\xffraw"}, {"ordering_key": "text-key"}],
    )
    assert [j.ordering_key for j in jobs] == [b"batch-key", None, b"\x00\xffraw", b"text-key"]
    assert jobs[0].enqueue_shard == shard_for_ordering_key(b"batch-key", 8)
    assert jobs[2].enqueue_shard == shard_for_ordering_key(b"\x00\xffraw", 8)
    assert jobs[3].enqueue_shard == shard_for_ordering_key(b"text-key", 8)
    conn.rollback()
    stored = dict(conn.execute("SELECT id, ordering_key FROM awa.jobs").fetchall())
    assert [None if stored[j.id] is None else bytes(stored[j.id]) for j in jobs] == [j.ordering_key for j in jobs]


def test_mixed_routes_many_queues_in_one_copy(client, conn):
    n = 400
    opts = [{"queue": f"part_{i % 4}", "ordering_key": f"user-{i % 13}"} for i in range(n)]
    for q in range(4):
        client.set_enqueue_shards(f"part_{q}", 4)
    jobs = client.insert_many_copy([{"i": i} for i in range(n)], kind="k", opts=opts)
    assert [j.args["i"] for j in jobs] == list(range(n))
    conn.rollback()
    rows = conn.execute(
        "SELECT queue, enqueue_shard, array_agg(lane_seq ORDER BY lane_seq), array_agg((args->>'i')::int ORDER BY lane_seq)"
        " FROM awa.jobs GROUP BY 1, 2"
    ).fetchall()
    for queue, shard, seqs, order in rows:
        assert seqs == list(range(1, len(seqs) + 1))  # dense, starting at 1, per lane
        assert order == sorted(order)  # input order kept inside a lane
        for i in order:
            assert f"part_{i % 4}" == queue
            assert shard_for_ordering_key(f"user-{i % 13}", 4) == shard
    metrics = client.enqueue_metrics()
    assert {q: m.jobs for q, m in metrics.items()} == {f"part_{q}": 100 for q in range(4)}
    assert all(m.batches == 1 for m in metrics.values())


# Keys that stress the key handling: repeats, str and bytes spellings of one key,
# non-UTF-8 bytes, a backslash, a str that looks like bytea hex input, no key.
_AWKWARD_KEYS = ["customer-1", b"customer-1", b"\x00\xff\\raw", "back\\slash", "\\x41", "caf\u00e9", None, b""]


@pytest.mark.parametrize("key_spelling", ["bytes", "str", "mixed"])
def test_keyed_opts_with_repeated_keys_and_mixed_queues_store_every_key_exactly(client, conn, key_spelling):
    # The two-key {"queue", "ordering_key"} shape PartitionedQueue.route_by_keys
    # yields; queues with 1 and with 4 shards; keys repeated many times.
    client.set_enqueue_shards("kq_1", 4)
    client.set_enqueue_shards("kq_3", 4)
    n = 600
    opts = []
    for i in range(n):
        key: object = f"cust-{i % 7}" if i % 5 else _AWKWARD_KEYS[i % len(_AWKWARD_KEYS)]
        if key_spelling == "bytes" and isinstance(key, str):
            key = key.encode("utf-8")
        elif key_spelling == "str" and isinstance(key, bytes):
            key = key.decode("latin-1")
        opts.append({"queue": f"kq_{i % 4}", "ordering_key": key})
    expected_keys = [k.encode("utf-8") if isinstance(k, str) else k for k in (o["ordering_key"] for o in opts)]
    # Twice: the second batch meets keys already seen by the first.
    jobs = client.insert_many_copy([{"i": i} for i in range(n)], kind="k", opts=opts)
    assert client.enqueue_many_copy([{"i": n + i} for i in range(n)], kind="k", opts=opts) == n
    assert [j.ordering_key for j in jobs] == expected_keys
    assert [j.queue for j in jobs] == [f"kq_{i % 4}" for i in range(n)]
    conn.rollback()
    rows = conn.execute(
        "SELECT (args->>'i')::int, queue, ordering_key, enqueue_shard, lane_seq FROM awa.jobs ORDER BY 1"
    ).fetchall()
    assert len(rows) == 2 * n
    lanes: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for i, queue, stored_key, shard, seq in rows:
        key = expected_keys[i % n]
        assert queue == f"kq_{i % 4}"
        assert (None if stored_key is None else bytes(stored_key)) == key
        if queue in ("kq_1", "kq_3") and key is not None:
            assert shard == shard_for_ordering_key(key, 4)
        elif queue in ("kq_0", "kq_2"):
            assert shard == 0
        lanes.setdefault((queue, shard), []).append((seq, i))
    for members in lanes.values():
        members.sort()
        assert [seq for seq, _ in members] == list(range(1, len(members) + 1))  # dense per lane
        assert [i for _, i in members] == sorted(i for _, i in members)  # input order kept


KEYED_BATCH_ERRORS = [
    ({57: {"queue": "kq_1", "ordering_key": 12}}, "ordering_key must be bytes-like or str"),
    ({57: {"queue": "kq_1", "ordering_key": [1, 2]}}, "ordering_key must be bytes-like or str"),
    ({57: {"queue": "", "ordering_key": b"k"}}, "opts queue must not be empty"),
    ({57: {"queue": 7, "ordering_key": b"k"}}, "opts queue must be a string"),
    ({57: {"queue": "a\tb", "ordering_key": b"k"}}, "opts queue may contain only ASCII letters, digits, '_', '-', '.' and ':' (got 'a\\tb')"),
    ({57: {"queue": "q" * 201, "ordering_key": b"k"}}, "opts queue must be at most 200 characters (got 201)"),
    (
        {57: {"queue": "kq_1", "ordering_key": b"k", "priority": 1}},
        "unsupported opts key 'priority'; expected 'queue' or 'ordering_key'",
    ),
    ({57: {"queue": "kq_1", "order_key": b"k"}}, "unsupported opts key 'order_key'; expected 'queue' or 'ordering_key'"),
    # The first bad entry decides the text, as in the entry-by-entry check.
    (
        {40: {"queue": "kq_1", "ordering_key": 3.5}, 57: {"queue": "", "ordering_key": b"k"}},
        "ordering_key must be bytes-like or str",
    ),
    (
        {40: {"queue": "", "ordering_key": b"k"}, 57: {"queue": "kq_1", "ordering_key": 3.5}},
        "opts queue must not be empty",
    ),
    ({57: {"queue": "", "ordering_key": 3.5}}, "opts queue must not be empty"),
]


@pytest.mark.parametrize("bad, message", KEYED_BATCH_ERRORS)
@pytest.mark.parametrize("key_type", ["bytes", "str"])
@pytest.mark.parametrize("method", ["insert_many_copy", "enqueue_many_copy"])
def test_bad_entry_in_the_middle_of_a_keyed_batch_raises_exact_text_and_writes_nothing(
    client, conn, bad, message, key_type, method
):
    n = 120
    keys = [f"cust-{i % 9}" for i in range(n)]
    opts = [
        {"queue": f"kq_{i % 4}", "ordering_key": k.encode() if key_type == "bytes" else k} for i, k in enumerate(keys)
    ]
    for index, entry in bad.items():
        opts[index] = entry
    with pytest.raises(ValidationError) as info:
        getattr(client, method)([{"i": i} for i in range(n)], kind="k", opts=opts)
    assert str(info.value) == message
    assert _count(conn) == 0


# --------------------------------------------------------------------------
# Same ordering key, every insert path -> one shard
# --------------------------------------------------------------------------


def test_same_key_through_every_insert_path_lands_on_one_shard(database_url, conn):
    key = "customer-42"
    with Client(database_url) as client:
        client.set_enqueue_shards("orders", 16)
        expected = shard_for_ordering_key(key, 16)
        client.insert({"p": "insert"}, kind="k", queue="orders", ordering_key=key)
        client.insert({"p": "insert-bytes"}, kind="k", queue="orders", ordering_key=key.encode())
        client.insert_many_copy([{"p": "many"}] * 3, kind="k", queue="orders", ordering_key=key)
        client.enqueue_many_copy([{"p": "enqueue"}] * 3, kind="k", queue="orders", ordering_key=key)
        client.insert_many_copy([{"p": "opts"}] * 2, kind="k", queue="elsewhere", opts=[{"queue": "orders", "ordering_key": key}] * 2)
        client.enqueue_many_copy([{"p": "opts2"}], kind="k", queue="orders", opts=[{"ordering_key": key}])
        run_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        client.insert({"p": "scheduled"}, kind="k", queue="orders", ordering_key=key, run_at=run_at)
        with psycopg.connect(database_url) as tx:
            client.insert({"p": "in-tx"}, kind="k", queue="orders", ordering_key=key, conn=tx)
            tx.commit()

    async def via_async():
        async with AsyncClient(database_url) as ac:
            await ac.insert({"p": "async"}, kind="k", queue="orders", ordering_key=key)
            await ac.enqueue_many_copy([{"p": "async-many"}] * 2, kind="k", queue="orders", ordering_key=key)

    asyncio.run(via_async())
    conn.rollback()
    shards = conn.execute(
        "SELECT DISTINCT enqueue_shard FROM awa.jobs WHERE ordering_key = %s", [key.encode()]
    ).fetchall()
    assert shards == [(expected,)]
    assert _count(conn, "ordering_key IS NOT NULL") == 16


def test_unkeyed_batches_spread_over_shards_by_rotor(client, conn):
    client.set_enqueue_shards("spread", 4)
    for _ in range(8):
        client.enqueue_many_copy([{"x": 1}] * 5, kind="k", queue="spread")
    conn.rollback()
    per_shard = dict(conn.execute("SELECT enqueue_shard, count(*) FROM awa.jobs GROUP BY 1").fetchall())
    assert per_shard == {0: 10, 1: 10, 2: 10, 3: 10}


# --------------------------------------------------------------------------
# Transactional enqueue
# --------------------------------------------------------------------------


def test_enqueue_inside_callers_transaction_commits_with_it(client, database_url, conn):
    with psycopg.connect(database_url) as tx:
        tx.execute("CREATE TABLE orders (id int)")
        tx.execute("INSERT INTO orders VALUES (1)")
        job = client.insert({"order": 1}, kind="k", conn=tx)
        client.enqueue_many_copy([{"order": 2}, {"order": 3}], kind="k", conn=tx)
        assert tx.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert _count(conn) == 0  # not visible before the caller commits
        tx.commit()
    assert _count(conn) == 3
    assert client.get_job(job.id).args == {"order": 1}


def test_enqueue_inside_callers_transaction_rolls_back_with_it(client, database_url, conn):
    with psycopg.connect(database_url) as tx:
        client.insert({"order": 1}, kind="k", conn=tx)
        client.insert_many_copy([{"order": 2}], kind="k", queue="other", conn=tx)
        tx.rollback()
    assert _count(conn) == 0
    # The lane reservation rolled back too: the next job gets number 1,
    # when the claim numbers it (a single insert takes no number, ADR 0028).
    assert client.insert({"order": 3}, kind="k").lane_seq is None
    assert [j.lane_seq for j in client.claim(["default"], 5)] == [1]


def test_async_transactional_enqueue(database_url, conn):
    async def main():
        async with AsyncClient(database_url) as ac:
            async with await psycopg.AsyncConnection.connect(database_url) as tx:
                await ac.insert({"a": 1}, kind="k", conn=tx)
                await tx.rollback()
                await ac.insert_many_copy([{"a": 2}], kind="k", conn=tx)
                await tx.commit()

    asyncio.run(main())
    conn.rollback()
    assert [r[0] for r in conn.execute("SELECT args->>'a' FROM awa.jobs").fetchall()] == ["2"]


# --------------------------------------------------------------------------
# Stored values
# --------------------------------------------------------------------------


def test_kind_derived_from_dataclass_and_values_roundtrip(client):
    job = client.insert(SendEmail(to="a@b.c", subject="Hi\\there\t\"quoted\" ünï"), tags=["t1", 'we"ird\\tag'], metadata={"m": [1, "\\"]})
    assert job.kind == "send_email"
    stored = client.get_job(job.id)
    assert stored.args == {"to": "a@b.c", "subject": "Hi\\there\t\"quoted\" ünï"}
    assert stored.tags == ["t1", 'we"ird\\tag'] and stored.metadata == {"m": [1, "\\"]}
    assert stored == job
    jobs = client.insert_many_copy([SendEmail("x", "y"), SMTPReport(3)])
    assert [j.kind for j in jobs] == ["send_email", "smtp_report"]
    assert [client.get_job(j.id).kind for j in jobs] == ["send_email", "smtp_report"]


def test_returned_jobs_equal_stored_rows(client):
    jobs = client.insert_many_copy(
        [{"i": i} for i in range(5)], kind="k", queue="eq", priority=1, max_attempts=3, tags=["a"], metadata={"b": 2}
    )
    for job in jobs:
        assert client.get_job(job.id) == job


def test_single_inserts_return_the_stored_rows(client):
    # Client.insert builds its Job from what it sent and the columns the
    # database decides (id, queue, shard, state, created_at): the two agree.
    now = dt.datetime.now(dt.timezone.utc)
    pq = client.partitioned_queue("eqs", 2)
    jobs = [
        client.insert({"z": 1, "a": [1.5, "\\", None]}, kind="k", queue="eqs", priority=1, max_attempts=3,
                      tags=["a", "b"], metadata={"m": {"n": 1}}),
        client.insert({"a": 1}, kind="k", queue="eqs", run_at=now + dt.timedelta(minutes=5)),
        client.insert({"a": 2}, kind="k", queue="eqs", run_at=now - dt.timedelta(seconds=1)),
        client.insert({"a": 3}, kind="k", **pq.route_by_key("customer-1"), concurrency_key="c1"),
    ]
    assert [j.state for j in jobs] == [JobState.AVAILABLE, JobState.SCHEDULED, JobState.AVAILABLE,
                                       JobState.AVAILABLE]
    for job in jobs:
        assert client.get_job(job.id) == job
    client.repartition("eqs", 3)  # (numbers the pending jobs of the old partitions)
    moved = next(k for k in (f"customer-{i}" for i in range(100))
                 if pq.queue_for_key(k) != PartitionedQueue("eqs", 3).queue_for_key(k))
    stale = client.insert({"a": 4}, kind="k", **pq.route_by_key(moved))  # the database reroutes it
    assert stale.queue == PartitionedQueue("eqs", 3).queue_for_key(moved) != pq.queue_for_key(moved)
    assert client.get_job(stale.id) == stale


def test_future_run_at_is_scheduled_without_lane_number(client):
    run_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    jobs = client.insert_many_copy([{"a": 1}, {"a": 2}], kind="k", run_at=run_at)
    assert all(j.state is JobState.SCHEDULED and j.lane_seq is None and j.run_at == run_at for j in jobs)
    assert client.claim(["default"], 10) == []
    past = client.insert({"a": 3}, kind="k", run_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    assert past.state is JobState.AVAILABLE and past.lane_seq is None  # numbered by the claim
    assert [(j.id, j.lane_seq) for j in client.claim(["default"], 10)] == [(past.id, 1)]


def test_empty_batch_is_a_no_op(client, conn):
    assert client.insert_many_copy([], kind="k") == []
    assert client.enqueue_many_copy([], kind="k") == 0
    assert _count(conn) == 0


# --------------------------------------------------------------------------
# Wake-ups
# --------------------------------------------------------------------------


def test_one_notify_per_touched_queue_per_transaction(client, database_url):
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(client.notify_channel)))
        with psycopg.connect(database_url) as tx:
            client.enqueue_many_copy([{"a": 1}] * 10, kind="k", queue="n1", opts=[{"queue": "n2"}] * 5 + [None] * 5, conn=tx)
            client.insert({"a": 2}, kind="k", queue="n1", conn=tx)
            client.insert({"a": 3}, kind="k", queue="n3", conn=tx)
            tx.commit()
        got = []
        deadline = dt.datetime.now() + dt.timedelta(seconds=3)
        while dt.datetime.now() < deadline and len(got) < 3:
            select.select([listener.fileno()], [], [], 0.2)
            got.extend(n for n in listener.notifies(timeout=0.2, stop_after=10))
        assert sorted(n.payload for n in got) == ["n1", "n2", "n3"]
        assert {n.channel for n in got} == {"awa_jobs"}


def _notified(listener, wait_s: float = 0.3) -> list[str]:
    got = []
    deadline = dt.datetime.now() + dt.timedelta(seconds=wait_s)
    while dt.datetime.now() < deadline:
        select.select([listener.fileno()], [], [], 0.05)
        got.extend(n.payload for n in listener.notifies(timeout=0.05, stop_after=10))
    return got


def test_single_insert_notifies_only_when_its_lane_was_empty(client, database_url):
    # ADR 0023: a lane with available jobs ahead of the new one has a claimer
    # coming for them anyway; the wake-up is sent when the lane was empty.
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(client.notify_channel)))
        client.insert({"n": 1}, kind="k", queue="w")
        assert _notified(listener) == ["w"]
        client.insert({"n": 2}, kind="k", queue="w")
        client.insert({"n": 3}, kind="k", queue="w", priority=1)  # another lane of the queue: empty
        assert _notified(listener) == ["w"]
        assert len(client.claim("w", 10)) == 3  # the lanes are drained
        client.insert({"n": 4}, kind="k", queue="w")
        assert _notified(listener) == ["w"]
        client.insert({"n": 5}, kind="k", queue="w", run_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
        assert _notified(listener) == []  # scheduled: its wake-up comes with promotion


@dataclass
class Inner:
    x: int
    tags: tuple


@dataclass
class Outer:
    inner: Inner
    when: float


class PydanticLike:
    """Stands in for a pydantic BaseModel: the client only calls model_dump(mode="json")."""

    def __init__(self, v: int) -> None:
        self.v = v

    def model_dump(self, mode: str = "python") -> dict:
        assert mode == "json"
        return {"v": self.v, "mode": mode}


def test_dataclass_and_model_args_serialise_like_asdict(client):
    jobs = client.insert_many_copy([Outer(Inner(1, ("a", "b")), 2.5), Outer(Inner(2, ()), 0.0)])
    assert [j.kind for j in jobs] == ["outer", "outer"]
    assert client.get_job(jobs[0].id).args == {"inner": {"x": 1, "tags": ["a", "b"]}, "when": 2.5}
    assert jobs[1].args == {"inner": {"x": 2, "tags": []}, "when": 0.0}
    model = client.insert(PydanticLike(7))
    assert model.kind == "pydantic_like" and client.get_job(model.id).args == {"v": 7, "mode": "json"}


def test_unsupported_args_type_is_rejected(client, conn):
    for bad in ([1, 2], "text", 5, object()):
        with pytest.raises(ValidationError) as info:
            client.enqueue_many_copy([{"ok": 1}, bad], kind="k")
        assert str(info.value) == "Job args must be a dataclass, pydantic BaseModel, or dict"
    assert _count(conn) == 0


def test_routed_opts_columns_store_the_same_rows_as_the_dicts_they_stand_for(client, conn):
    from awa.routing import PartitionedQueue, RoutedOpts

    pq = PartitionedQueue("routed", 4)
    client.set_enqueue_shards("routed__p2", 4)
    keys = [_AWKWARD_KEYS[i % len(_AWKWARD_KEYS)] or f"user-{i % 5}" for i in range(120)]
    routed = pq.route_by_keys(keys)
    assert isinstance(routed, RoutedOpts)
    via_columns = client.insert_many_copy([{"i": i} for i in range(120)], kind="k", opts=routed)
    via_dicts = client.insert_many_copy([{"i": i} for i in range(120)], kind="k", opts=list(routed))
    shape = [(j.queue, j.enqueue_shard, j.ordering_key) for j in via_columns]
    assert shape == [(j.queue, j.enqueue_shard, j.ordering_key) for j in via_dicts]
    assert [q for q, _, _ in shape] == [pq.queue_for_key(k) for k in keys]
    conn.rollback()
    stored = conn.execute("SELECT id, ordering_key FROM awa.jobs").fetchall()
    by_id = {i: bytes(k) for i, k in stored}
    assert [by_id[j.id] for j in via_columns] == [j.ordering_key for j in via_columns]
    # Index routes in column form too.
    assert client.enqueue_many_copy([{"i": i} for i in range(8)], kind="k", opts=pq.route_by_indexes(range(8))) == 8
    assert _count(conn, "queue = 'routed__p3' AND ordering_key IS NULL") == 2


@pytest.mark.parametrize(
    ("routed_queues", "message"),
    [
        (["q" * 201], "opts queue must be at most 200 characters (got 201)"),
        (["a\tb"], "opts queue may contain only ASCII letters, digits, '_', '-', '.' and ':' (got 'a\\tb')"),
        ([""], "opts queue must not be empty"),
    ],
)
def test_routed_opts_with_bad_queue_names_are_refused_and_store_nothing(client, conn, routed_queues, message):
    from awa.routing import RoutedOpts

    opts = RoutedOpts(routed_queues * 3, [b"k"] * 3)
    with pytest.raises(ValidationError, match=re.escape(message)):
        client.enqueue_many_copy([{"i": i} for i in range(3)], kind="k", opts=opts)
    with pytest.raises(ValidationError, match=r"opts length must match jobs length \(got 3, expected 2\)"):
        client.enqueue_many_copy([{"i": i} for i in range(2)], kind="k", opts=RoutedOpts(["ok"] * 3))
    assert _count(conn) == 0
