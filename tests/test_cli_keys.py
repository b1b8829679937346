"""``awa keys`` and ``concurrency_key`` in ``awa enqueue``, in a subprocess against real PostgreSQL."""

from __future__ import annotations

import json

import psycopg

from awa.client import Client
from test_cli_helpers import run_awa


def test_policy_from_the_command_line_and_keys_from_json_lines(database_url):
    made = run_awa("keys", "create", "orders", "--from-ordering-key", database_url=database_url)
    assert made.returncode == 0, made.stderr
    assert "orders: max_in_flight 1" in made.stdout
    lines = "\n".join(json.dumps(x) for x in [
        {"kind": "c", "ordering_key": "ada"},
        {"kind": "c", "ordering_key": "bob", "concurrency_key": "ada"},
        {"kind": "c", "concurrency_key": "tom"},
    ]) + "\n"
    sent = run_awa("enqueue", "--queue", "orders", "--partitions", "4", input=lines, database_url=database_url)
    assert sent.returncode == 0, sent.stderr
    with psycopg.connect(database_url) as conn:
        keys = [r[0] for r in conn.execute("SELECT concurrency_key FROM awa.jobs ORDER BY id").fetchall()]
    assert sorted(k for k in keys if k) == [b"ada", b"tom"]
    with Client(database_url) as client:
        queues = client.partitioned_queue("orders", 4).physical_queues
        assert len(client.claim(queues, 10)) == 2  # one ada (over two partitions), one tom
    listed = run_awa("keys", "list", "--json", database_url=database_url)
    [policy] = json.loads(listed.stdout)
    assert (policy["in_flight"], policy["keys_in_flight"], policy["most_in_flight"]) == (2, 2, 1)


def test_bad_limits_and_unknown_policies_exit_2_and_change_nothing(database_url):
    assert run_awa("keys", "create", "orders", "-n", "2", database_url=database_url).returncode == 0
    for argv in (["keys", "set", "orders", "0"], ["keys", "set", "orders", "-3"], ["keys", "set", "nope", "2"],
                 ["keys", "create", "orders__p1"], ["keys", "drop", "nope"]):
        result = run_awa(*argv, database_url=database_url)
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert result.stderr.startswith("awa: error:")
    bad = run_awa("enqueue", "--queue", "orders", input='{"kind": "c", "concurrency_key": ["x"]}\n',
                  database_url=database_url)
    assert bad.returncode == 2
    with Client(database_url) as client:
        [p] = client.key_policies()
        assert (p.max_in_flight, p.pending_max) == (2, None)
        assert client.list_jobs() == []
