"""Issue 20's bad-input defects: each rejected with ValidationError, nothing written."""

from __future__ import annotations

import datetime as dt
import json
import math

import psycopg
import pytest

from awa.client import Client
from awa.db.url import check_url, describe, explain_connect_error, redact
from awa.errors import DatabaseUnavailable, ValidationError
from awa.routing import PartitionedQueue
from awa.routing.names import queue_name_problem, split_partition
from awa.storage.codec import MAX_JSON_DEPTH
from test_cli_helpers import assert_one_line_error, run_awa

UTC_PLUS_14 = dt.timezone(dt.timedelta(hours=14))


def _count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0]


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def _enqueue_calls(client, **kwargs):
    kwargs = {"kind": "k", **kwargs}
    args = kwargs.pop("args", {"a": 1})
    return (
        lambda: client.insert(args, **kwargs),
        lambda: client.insert_many_copy([{"ok": 1}, args], **kwargs),
        lambda: client.enqueue_many_copy([args, {"ok": 1}], **kwargs),
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_in_args_are_rejected(client, database_url, bad):
    for where in ({"x": bad}, {"x": [1, {"y": bad}]}):
        for call in _enqueue_calls(client, args=where):
            with pytest.raises(ValidationError, match="must not contain NaN or infinity"):
                call()
    with pytest.raises(ValidationError, match="metadata must not contain NaN or infinity"):
        client.insert({}, kind="k", metadata={"m": bad})
    assert _count(database_url) == 0


def test_awa_enqueue_rejects_nan(database_url):
    result = run_awa("enqueue", "--queue", "q", input='{"kind": "k", "args": {"x": NaN}}\n', database_url=database_url)
    assert result.returncode == 2, result.stdout
    assert_one_line_error(result.stderr)
    assert "NaN" in result.stderr
    assert _count(database_url) == 0


@pytest.mark.parametrize(
    "run_at",
    [
        dt.datetime(1, 1, 1, tzinfo=UTC_PLUS_14),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-14))),
        dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc),
    ],
)
def test_run_at_outside_the_readable_range_is_rejected_before_writing(client, database_url, run_at):
    for call in _enqueue_calls(client, run_at=run_at):
        with pytest.raises(ValidationError, match="run_at must be between 0001-01-02 and 9999-12-30 UTC"):
            call()
    assert _count(database_url) == 0


def test_extreme_but_valid_run_at_round_trips(client):
    for run_at in (dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc), dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)):
        job = client.insert({}, kind="k", run_at=run_at)
        assert client.get_job(job.id).run_at == run_at


@pytest.mark.parametrize("waited", [dt.timedelta(days=30), None])  # None: since 0001-01-02
def test_priority_aging_of_a_long_wait_does_not_overflow(client, waited):
    # Found by the fuzz suite (AWA_FUZZ_EXAMPLES=300): the aging step count,
    # wait / interval, was cast to integer, so a job 30 days due with a 1 ms
    # interval (2.6e9 steps) failed every claim of its queue with
    # NumericValueOutOfRange. It now ages to priority 1 and is claimed.
    now = dt.datetime.now(dt.timezone.utc)
    run_at = dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc) if waited is None else now - waited
    old = client.insert({"n": 1}, kind="k", queue="aging", priority=4, run_at=run_at)
    new = client.insert({"n": 2}, kind="k", queue="aging", priority=1)
    claimed = client.claim(["aging"], 2, priority_aging_interval_ms=1)
    assert sorted(j.id for j in claimed) == sorted([old.id, new.id])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"queue": "a\ud800"}, "queue may contain only"),
        ({"args": {"a": "\ud800"}}, "args at index . must not contain lone surrogates"),
        ({"args": {"\udfff": 1}}, "args at index . must not contain lone surrogates"),
        ({"metadata": {"a": "x\ud800"}}, "metadata must not contain lone surrogates"),
        ({"tags": ["\ud800"]}, "tags must not contain lone surrogates"),
        ({"kind": "k\ud800"}, "kind must not contain lone surrogates"),
        ({"ordering_key": "\ud800"}, "ordering_key must be bytes-like or str"),
        ({"opts": [{"queue": "q"}, {"queue": "q", "ordering_key": "\ud800"}]}, "ordering_key must be bytes-like or str"),
    ],
)
def test_lone_surrogates_are_rejected_everywhere(client, database_url, kwargs, message):
    calls = _enqueue_calls(client, **kwargs)
    if "opts" in kwargs:
        calls = calls[1:]
    for call in calls:
        with pytest.raises(ValidationError, match=message):
            call()
    assert _count(database_url) == 0


def test_insert_and_route_by_key_agree_on_a_lone_surrogate_key(client):
    with pytest.raises(ValidationError) as routed:
        PartitionedQueue("q", 4).route_by_key("\ud800")
    with pytest.raises(ValidationError) as inserted:
        client.insert({}, kind="k", ordering_key="\ud800")
    assert str(routed.value) == str(inserted.value)


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_args_nest_at_most_max_depth(client, database_url):
    assert MAX_JSON_DEPTH == 128
    job = client.insert(_nested(MAX_JSON_DEPTH), kind="k")
    assert client.get_job(job.id).args == _nested(MAX_JSON_DEPTH)
    for depth in (MAX_JSON_DEPTH + 1, 300, 100_000):
        for call in _enqueue_calls(client, args=_nested(depth)):
            with pytest.raises(ValidationError, match="must not nest deeper than 128 levels"):
                call()
    assert _count(database_url) == 1


def test_awa_enqueue_rejects_deep_args(database_url):
    for depth in (200, 100_000):
        line = '{"kind": "k", "args": {"a": ' + "[" * depth + "]" * depth + "}}"
        result = run_awa("enqueue", "--queue", "q", input=line + "\n", database_url=database_url)
        assert result.returncode == 2, result.stdout
        assert_one_line_error(result.stderr)
        assert "unexpected" not in result.stderr and "nest" in result.stderr
    assert _count(database_url) == 0


def test_non_string_keys_are_rejected_not_stringified(client, database_url):
    with pytest.raises(ValidationError, match="must have string keys only"):
        client.insert({1: "a"}, kind="k")
    assert _count(database_url) == 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.claim("q", 2**40), "limit must be an integer between 0 and 2147483647"),
        (lambda c: c.claim(["q"], 10, limits=[2**40]), "per-queue limit"),
        (lambda c: c.claim("q", 1, deadline_ms=2**70), "deadline_ms must be an integer"),
        (lambda c: c.list_jobs(limit=-1), "limit must be an integer between 1 and"),
        (lambda c: c.list_jobs(cursor="9" * 30), "cursor must be"),
        (lambda c: c.list_jobs(cursor="\u00b2"), "cursor must be"),
        (lambda c: c.list_dlq(limit=-1), "limit must be an integer between 1 and"),
        (lambda c: c.rescue_expired(heartbeat_timeout=-1), "heartbeat_timeout must be a positive number"),
        (lambda c: c.rescue_expired(heartbeat_timeout=0), "heartbeat_timeout must be a positive number"),
        (lambda c: c.promote_due(limit=2**40), "limit must be an integer"),
        (lambda c: c.complete(2**70, 1), "job id must be an integer"),
        (lambda c: c.complete_many([(1, 2**70)]), "run_lease must be an integer"),
        (lambda c: c.fail(1, 2**64), "run_lease must be an integer"),
        (lambda c: c.snooze(1, 1, 1e300), "seconds must be at most"),
        (lambda c: c.retry(1, 1, after_seconds=10**400), "after_seconds must be"),
        (lambda c: c.heartbeat(1, 1, progress={"p": math.nan}), "progress must not contain NaN"),
        (lambda c: c.get_job(-(2**64)), "job id must be an integer"),
        (lambda c: c.get_dlq_job(2**63), "job id must be an integer"),
        (lambda c: c.move_failed_to_dlq(1, "r\x00"), "reason must not contain NUL"),
        (lambda c: c.prune_dlq(retention_hours=1e300), "dlq_retention_hours must be at most"),
        (lambda c: c.prune_jobs(limit=2**40), "limit must be at most"),
        (lambda c: c.purge_dlq(), "purge_dlq requires at least one of kind, queue, or tag"),
        (lambda c: c.bulk_retry_from_dlq(), "bulk_retry_from_dlq requires at least one of kind, queue, or tag"),
        (lambda c: c.bulk_move_failed_to_dlq(), "bulk_move_failed_to_dlq requires at least one of kind or queue"),
        (lambda c: c.bulk_retry_from_dlq(kind="k", allow_all="no"), "allow_all must be True or False"),
        (lambda c: c.list_dlq(tag=1), "tag must be a string"),
        (lambda c: c.list_dlq(before_id=2**63), "before_id must be an integer"),
        (lambda c: c.purge_dlq(kind="k", before_dlq_at=dt.datetime(2030, 1, 1)), "before_dlq_at must be timezone-aware"),
    ],
)
def test_out_of_range_arguments_are_validation_errors(client, call, message):
    with pytest.raises(ValidationError, match=message):
        call(client)


def test_rescue_with_a_negative_timeout_rescues_nothing(client):
    client.insert({}, kind="k", queue="q")
    [job] = client.claim("q", 1)
    with pytest.raises(ValidationError):
        client.rescue_expired(heartbeat_timeout=-1)
    assert client.get_job(job.id).state.value == "running"


# -- queue names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["my queue", "a/b", "orders;drop", "q" * 200, "é", "x__p0", "x__p01", "x__p32767", "a__p1__p2", "tab\t", ""],
)
def test_queue_names_outside_the_grammar_are_rejected(client, database_url, name):
    for call in _enqueue_calls(client, queue=name):
        with pytest.raises(ValidationError):
            call()
    with pytest.raises(ValidationError):
        client.claim([name], 1)
    with pytest.raises(ValidationError):
        client.pause_queue(name, create=True)
    assert _count(database_url) == 0


def test_remembered_names_change_nothing_that_is_accepted():
    # check_queue and check_name remember the names they accepted (the single
    # insert's hot path); what they accept and refuse stays the same.
    from awa.storage import validate

    assert validate.check_queue("x__p1") == "x__p1"  # remembered as a queue name
    with pytest.raises(ValidationError, match="reserved for partitions"):
        validate.check_queue("x__p1", "logical queue", allow_partition=False)
    for _ in range(2):  # a refused name is never remembered
        with pytest.raises(ValidationError, match="may contain only"):
            validate.check_queue("my queue")
        with pytest.raises(ValidationError, match="control characters"):
            validate.check_name("k\n", "kind")
    with pytest.raises(ValidationError, match="kind must be a string, got int"):
        validate.check_name(3, "kind")
    for i in range(validate._KNOWN_LIMIT + 10):  # past the bound the sets start over
        validate.check_queue(f"q{i}")
        validate.check_name(f"k{i}", "kind")
    assert len(validate._known_queues) <= validate._KNOWN_LIMIT
    assert len(validate._known_names) <= validate._KNOWN_LIMIT
    assert validate.check_queue("q1") == "q1" and validate.check_name("k1", "kind") == "k1"


def test_job_from_values_fills_the_fields_in_declaration_order():
    from dataclasses import fields

    from awa.storage.models import Job

    values = [object() for _ in fields(Job)]
    job = Job.from_values(values)
    assert [getattr(job, f.name) for f in fields(Job)] == values
    with pytest.raises(ValueError):
        Job.from_values(values[:-1])


def test_partition_names_read_back_unambiguously():
    assert split_partition("x__p1") == ("x", 1)
    assert queue_name_problem("x__p1") is None
    assert "reserved for partitions" in queue_name_problem("x__p1", allow_partition=False)
    for good in ("orders", "a.b:c-d_e", "x__p", "x___p1", "__p1", "q" * 192, "q" * 192 + "__p32766"):
        assert queue_name_problem(good) is None, good
    # a logical queue (or registry entry) cannot itself look like a partition
    with pytest.raises(ValidationError, match="reserved for partitions"):
        PartitionedQueue("x__p1", 2)
    with pytest.raises(ValidationError, match="at most 192 characters"):
        PartitionedQueue("q" * 193, 2)


def test_registry_refuses_a_partition_name_as_logical_queue(client):
    with pytest.raises(ValidationError, match="reserved for partitions"):
        client.register_partitions("x__p1", 2)


# -- database URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:SuperSecret@localhost/db",
        "postgresql://u:SuperSecret@localhost/db?bogus_option=1",
        "postgresql://u:Super%Secret@localhost/db",
        "host=localhost password=SuperSecret port=1 junk",
        "host=localhost password='Super Secret",
    ],
)
def test_unusable_urls_never_show_the_password_and_exit_3(url):
    result = run_awa("stats", database_url=url)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert_one_line_error(result.stderr)
    assert "Secret" not in result.stderr and "Secret" not in result.stdout
    with pytest.raises(DatabaseUnavailable) as info:
        Client(url).close()
    assert "Secret" not in str(info.value)


def test_url_helpers_redact_every_spelling():
    url = "postgresql://u:Sup%40erSecret@h:1/db"
    assert redact("x Sup%40erSecret y Sup@erSecret", url) == "x *** y ***"
    assert "Secret" not in describe("mysql://u:SuperSecret@h/db")
    assert "Secret" not in str(explain_connect_error(url, Exception(f"bad {url}")))
    assert check_url("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(DatabaseUnavailable, match="not a PostgreSQL URL"):
        check_url("mysql://u:SuperSecret@localhost/db")
