"""``awa stats``, ``awa queue``, ``awa rescue`` and ``awa dlq`` in a subprocess against real PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import psycopg
import pytest

from awa.client import Client
from awa.errors import ValidationError
from awa.routing import PartitionedQueue
from test_cli_helpers import assert_one_line_error, cli_env, run_awa, sigint_as_a_terminal_sends_it


def _dead_letter(client: Client, queue: str, n: int, kind: str = "send") -> list[int]:
    """n jobs that failed their only attempt on a queue with the DLQ enabled."""
    client.set_queue_dlq(queue, True)
    client.insert_many_copy([{"i": i} for i in range(n)], kind=kind, queue=queue, max_attempts=1)
    ids = []
    for job in client.claim([queue], n):
        assert client.fail(job.id, job.run_lease, f"boom {job.args['i']}")
        ids.append(job.id)
    return sorted(ids)


# -- stats ---------------------------------------------------------------------


def test_stats_table_and_partition_by_shard_grid(database_url):
    pq = PartitionedQueue("orders", 2)
    with Client(database_url) as client:
        client.set_enqueue_shards("orders__p1", 3)
        client.insert_many_copy([{"i": i} for i in range(6)], kind="k", opts=[pq.route_by_index(i) for i in range(6)])
        client.pause_queue("orders")
    result = run_awa("stats", "--queue", "orders", "--partitions", "2", database_url=database_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    orders = next(line.split() for line in lines if line.startswith("orders "))
    assert orders[:5] == ["orders", "yes", "1", "0", "3"]  # paused, 1 shard, 0 scheduled, 3 available
    total = next(line for line in lines if line.startswith("orders (all 2)"))
    assert total.split()[3:5] == ["0", "6"]
    grid_header = next(line for line in lines if line.startswith("available by shard"))
    assert grid_header.split()[-4:] == ["s0", "s1", "s2", "total"]
    p1_grid = [line.split() for line in lines if line.startswith("orders__p1 ")][-1]
    assert sum(map(int, p1_grid[1:4])) == 3 and p1_grid[-1] == "3"


def test_stats_json_and_watch_count(database_url):
    with Client(database_url) as client:
        client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="mail")
    result = run_awa("stats", "--json", "--watch", "0.1", "--count", "2", database_url=database_url)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(docs) == 2
    assert docs[0][0]["queue"] == "mail" and docs[0][0]["available"] == 3


def test_stats_watch_stops_on_ctrl_c(database_url):
    proc = subprocess.Popen(
        [sys.executable, "-m", "awa", "stats", "--json", "--watch", "0.2"],
        env=cli_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one refresh done
        assert isinstance(json.loads(first), list), first
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert_one_line_error(err)  # "awa: error: interrupted", no traceback


def test_stats_shows_every_partition_even_before_it_has_jobs(database_url):
    with Client(database_url) as client:
        client.insert({"i": 1}, kind="k", queue="orders")
    result = run_awa("stats", "-q", "orders", "-p", "3", "--json", database_url=database_url)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert [(s["queue"], s["available"], s["enqueue_shards"]) for s in stats] == [
        ("orders", 1, 1), ("orders__p1", 0, 1), ("orders__p2", 0, 1)]


def test_stats_on_an_empty_database(database_url):
    result = run_awa("stats", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "no queues yet" in result.stdout


def test_stats_partitions_without_queue_is_a_usage_error(database_url):
    result = run_awa("stats", "--partitions", "4", database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)


# -- queue settings ----------------------------------------------------------------


def test_queue_pause_resume_and_shards_apply_to_every_partition(database_url):
    result = run_awa("queue", "pause", "orders", "--partitions", "3", "--create", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "paused 3 queue(s): orders, orders__p1, orders__p2" in result.stdout
    with Client(database_url) as client:
        assert {s.queue: s.paused for s in client.queue_stats()} == {"orders": True, "orders__p1": True, "orders__p2": True}
        client.insert({"x": 1}, kind="k", queue="orders__p1")
        assert client.claim(["orders__p1"], 10) == []  # paused: nothing is handed out

    assert run_awa("queue", "resume", "orders", "-p", "3", database_url=database_url).returncode == 0
    assert run_awa("queue", "shards", "orders", "-p", "3", "--shards", "4", database_url=database_url).returncode == 0
    with Client(database_url) as client:
        stats = {s.queue: s for s in client.queue_stats()}
        assert all(not s.paused and s.enqueue_shards == 4 for s in stats.values())
        assert len(client.claim(["orders__p1"], 10)) == 1


def test_queue_shards_out_of_range_is_a_usage_error(database_url):
    result = run_awa("queue", "shards", "orders", "--shards", "65", database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    with Client(database_url) as client:
        assert client.queue_stats() == []


def test_rescue_returns_stale_running_jobs(database_url):
    with Client(database_url) as client:
        client.insert({"x": 1}, kind="k", queue="q")
        [job] = client.claim(["q"], 1)
    with psycopg.connect(database_url) as conn:  # the worker died long ago
        conn.execute("UPDATE awa.jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = %s", [job.id])
    result = run_awa("rescue", "--heartbeat-timeout", "60", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rescued 1 job(s)")
    with Client(database_url) as client:
        assert client.get_job(job.id).state.value != "running"


# -- dead-letter queue ------------------------------------------------------------------


def test_dlq_list_table_and_json(database_url):
    with Client(database_url) as client:
        ids = _dead_letter(client, "mail", 3)
    table = run_awa("dlq", "list", database_url=database_url)
    assert table.returncode == 0, table.stderr
    for job_id in ids:
        assert any(line.split()[:3] == [str(job_id), "send", "mail"] for line in table.stdout.splitlines())
    as_json = run_awa("dlq", "list", "--json", "--queue", "mail", database_url=database_url)
    entries = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert sorted(e["id"] for e in entries) == ids
    assert all(e["last_error"].startswith("boom") for e in entries)


def test_dlq_list_limit_says_how_many_are_hidden(database_url):
    with Client(database_url) as client:
        _dead_letter(client, "mail", 4)
    result = run_awa("dlq", "list", "--limit", "2", database_url=database_url)
    assert result.returncode == 0
    assert "2 of 4 shown" in result.stdout


def test_dlq_retry_by_id_puts_the_job_back(database_url):
    with Client(database_url) as client:
        ids = _dead_letter(client, "mail", 2)
    result = run_awa("dlq", "retry", str(ids[0]), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "retried 1 job(s)" in result.stdout
    with Client(database_url) as client:
        assert client.dlq_depth() == 1
        assert client.get_job(ids[0]).state.value == "available"


def test_dlq_retry_all_into_another_queue(database_url):
    with Client(database_url) as client:
        _dead_letter(client, "mail", 3)
        _dead_letter(client, "sms", 1)
    result = run_awa("dlq", "retry", "--all", "--queue", "mail", "--to-queue", "mail-retry", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "retried 3 job(s)" in result.stdout
    with Client(database_url) as client:
        assert client.dlq_depth() == 1  # the sms job stays
        assert len(client.list_jobs(queue="mail-retry", limit=10)) == 3


def test_dlq_unknown_id_exits_1_and_names_it(database_url):
    with Client(database_url) as client:
        ids = _dead_letter(client, "mail", 1)
    result = run_awa("dlq", "purge", str(ids[0]), "999999", database_url=database_url)
    assert result.returncode == 1
    assert "purged 1 job(s)" in result.stdout
    assert "999999" in result.stderr


def test_dlq_purge_all_needs_yes(database_url):
    with Client(database_url) as client:
        _dead_letter(client, "mail", 2)
    refused = run_awa("dlq", "purge", "--all", database_url=database_url)
    assert refused.returncode == 2
    assert_one_line_error(refused.stderr)
    with Client(database_url) as client:
        assert client.dlq_depth() == 2
    purged = run_awa("dlq", "purge", "--all", "--yes", database_url=database_url)
    assert purged.returncode == 0, purged.stderr
    with Client(database_url) as client:
        assert client.dlq_depth() == 0


@pytest.mark.parametrize("argv", [["dlq", "retry"], ["dlq", "retry", "1", "--all"], ["dlq", "purge", "1", "--queue", "q"]])
def test_dlq_selection_errors(database_url, argv):
    result = run_awa(*argv, database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)


def test_pause_or_resume_of_an_unknown_queue_is_an_error_and_changes_nothing(database_url):
    with Client(database_url) as client:
        client.insert({"x": 1}, kind="k", queue="known")
    for action in ("pause", "resume"):
        result = run_awa("queue", action, "known", "nonexistent_queue", database_url=database_url)
        assert result.returncode == 2, result.stdout
        assert_one_line_error(result.stderr)
        assert "unknown queue(s): nonexistent_queue" in result.stderr and "--create" in result.stderr
    with Client(database_url) as client:
        assert {s.queue: s.paused for s in client.queue_stats()} == {"known": False}  # nothing changed
        with pytest.raises(ValidationError, match="unknown queue 'nonexistent_queue'"):
            client.pause_queue("nonexistent_queue")
        client.pause_queue("nonexistent_queue", create=True)
        assert client.queue_stats("nonexistent_queue")[0].paused is True
        # a partition inside a registered width exists before its first job
        client.register_partitions("orders", 3)
        client.pause_queue("orders__p2")
        with pytest.raises(ValidationError, match="unknown queue 'orders__p3'"):
            client.pause_queue("orders__p3")
