"""``awa enqueue`` in a subprocess: routing, input shapes, validation, atomicity."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest

from awa.routing import XXH3, PartitionedQueue
from test_cli_helpers import assert_one_line_error, run_awa


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, kind, queue, ordering_key, args, priority, state::text, enqueue_shard, lane_seq"
            " FROM awa.jobs ORDER BY id"
        ).fetchall()


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0]


def _lines(*objs: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_keyed_jobs_land_on_the_partition_of_their_key(database_url):
    pq = PartitionedQueue("orders", 4)
    keys = [f"customer-{i}" for i in range(40)]
    payload = _lines(*({"kind": "charge", "args": {"i": i}, "ordering_key": k} for i, k in enumerate(keys)))
    result = run_awa("enqueue", "--queue", "orders", "--partitions", "4", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "enqueued 40 job(s)" in result.stdout

    rows = _rows(database_url)
    assert len(rows) == 40
    for _id, kind, queue, key, args, *_ in rows:
        assert kind == "charge"
        expected_key = keys[args["i"]]
        assert bytes(key) == expected_key.encode()
        assert queue == pq.queue_for_key(expected_key)
    assert len({r[2] for r in rows}) > 1  # 40 keys do not all hash to one partition


def test_unkeyed_jobs_round_robin_over_partitions(database_url):
    payload = _lines(*({"kind": "ping", "args": {"i": i}} for i in range(8)))
    result = run_awa("enqueue", "-q", "email", "-p", "4", "--json", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    expected = {"email": 2, "email__p1": 2, "email__p2": 2, "email__p3": 2}
    assert summary == {"enqueued": 8, "queues": expected}
    assert Counter(r[2] for r in _rows(database_url)) == expected


def test_same_key_keeps_input_order_in_its_lane(database_url):
    payload = _lines(*({"kind": "step", "args": {"n": n}, "ordering_key": "acct-7"} for n in range(10)))
    result = run_awa("enqueue", "-q", "ledger", "-p", "3", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    rows = _rows(database_url)
    assert len({(r[2], r[5], r[7]) for r in rows}) == 1  # one lane: queue, priority, shard
    by_seq = sorted(rows, key=lambda r: r[8])
    assert [r[4]["n"] for r in by_seq] == list(range(10))


def test_args_lines_with_kind_and_key_field(database_url, tmp_path):
    pq = PartitionedQueue("orders", 2)
    path = tmp_path / "orders.jsonl"
    path.write_text(_lines({"customer": 17, "total": 5}, {"customer": "c-9", "total": 1}))
    result = run_awa("enqueue", "--file", str(path), "--kind", "bill", "--key-field", "customer", "-q", "orders",
                     "-p", "2", "--priority", "1", database_url=database_url)
    assert result.returncode == 0, result.stderr
    rows = sorted(_rows(database_url), key=lambda r: r[4]["total"], reverse=True)
    assert [(r[1], r[4], bytes(r[3]), r[5]) for r in rows] == [
        ("bill", {"customer": 17, "total": 5}, b"17", 1),
        ("bill", {"customer": "c-9", "total": 1}, b"c-9", 1),
    ]
    assert [r[2] for r in rows] == [pq.queue_for_key("17"), pq.queue_for_key("c-9")]


def test_print_ids_in_input_order(database_url):
    payload = _lines(*({"kind": "k", "args": {"i": i}} for i in range(5)))
    result = run_awa("enqueue", "--print-ids", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    ids = [int(x) for x in result.stdout.split()]
    rows = {r[0]: r[4]["i"] for r in _rows(database_url)}
    assert [rows[i] for i in ids] == list(range(5))


def test_xxh3_scheme_routes_with_xxh3(database_url):
    keys = [f"k{i}" for i in range(30)]
    payload = _lines(*({"kind": "x", "args": {"key": k}, "ordering_key": k} for k in keys))
    result = run_awa("enqueue", "-q", "q", "-p", "5", "--scheme", "xxh3", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    pq = PartitionedQueue("q", 5, scheme=XXH3)
    assert all(r[2] == pq.queue_for_key(r[4]["key"]) for r in _rows(database_url))


def test_correlated_scheme_is_refused(database_url):
    result = run_awa("enqueue", "-q", "q", "-p", "4", "--scheme", "correlated",
                     input=_lines({"kind": "x", "ordering_key": "a"}), database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert _count(database_url) == 0


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", "line 3: not valid JSON"),
        ("[1, 2]", "line 3: expected a JSON object"),
        ('{"args": {}}', "line 3: 'kind'"),
        ('{"kind": "x", "colour": "red"}', "line 3: unknown field(s) colour"),
        ('{"kind": "x", "priority": "high"}', "line 3: priority must be an integer"),
        ('{"kind": "x", "run_at": "2030-01-01T00:00:00"}', "needs a timezone"),
        ('{"kind": "x", "priority": 9}', "priority must be between 1 and 4"),
    ],
)
def test_bad_input_names_the_line_and_writes_nothing(database_url, bad_line, message):
    good = _lines({"kind": "ok", "args": {}}, {"kind": "ok", "args": {}})
    result = run_awa("enqueue", input=good + bad_line + "\n", database_url=database_url)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr)
    assert message in result.stderr
    assert _count(database_url) == 0


def test_future_run_at_is_scheduled(database_url):
    payload = _lines({"kind": "later", "run_at": "2999-01-01T00:00:00Z"}, {"kind": "now"})
    result = run_awa("enqueue", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert {r[1]: r[6] for r in _rows(database_url)} == {"later": "scheduled", "now": "available"}


def test_commit_every_inserts_everything(database_url):
    payload = _lines(*({"kind": "k", "args": {"i": i}} for i in range(25)))
    result = run_awa("enqueue", "--batch-size", "4", "--commit-every", "8", input=payload, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert _count(database_url) == 25
    assert "25/25 jobs sent" in result.stderr  # progress lines for a multi-batch input


def test_bad_line_late_in_the_input_writes_nothing_even_with_commit_every(database_url):
    # NUL in args is only caught by the client's own validation, not by the line parser.
    good = _lines(*({"kind": "k", "args": {"i": i}} for i in range(20)))
    bad = json.dumps({"kind": "k", "args": {"text": "a\u0000b"}}) + "\n"
    result = run_awa("enqueue", "--batch-size", "5", "--commit-every", "5", input=good + bad, database_url=database_url)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr)
    assert "line 21..21" in result.stderr and "NUL" in result.stderr
    assert _count(database_url) == 0


def test_missing_file_is_a_usage_error(database_url, tmp_path):
    result = run_awa("enqueue", "--file", str(tmp_path / "nope.jsonl"), database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "cannot read" in result.stderr


def test_unmigrated_database_says_run_migrate(database_factory):
    url = database_factory(migrated=False)
    result = run_awa("enqueue", input=_lines({"kind": "k"}), database_url=url)
    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert "awa migrate" in result.stderr


def test_empty_input_enqueues_nothing(database_url):
    result = run_awa("enqueue", input="\n\n", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "enqueued 0 job(s)" in result.stdout
