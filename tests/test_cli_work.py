"""``awa work`` in a subprocess: handler modules, partitioned queues, config files, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from awa.client import Client
from awa.routing import PartitionedQueue
from test_cli_helpers import assert_one_line_error, cli_env, run_awa, sigint_as_a_terminal_sends_it

HANDLERS = textwrap.dedent(
    """
    import json, os

    LOG = os.environ["AWA_TEST_LOG"]

    def register(client):
        @client.task("charge", queue="orders")
        def charge(job):
            with open(LOG, "a") as f:
                f.write(json.dumps({"queue": job.queue, "i": job.args["i"]}) + "\\n")
    """
)


@pytest.fixture
def handler_dir(tmp_path: Path) -> Path:
    (tmp_path / "shop_tasks.py").write_text(HANDLERS)
    return tmp_path


def _env(database_url: str, handler_dir: Path) -> dict[str, str]:
    return cli_env(database_url, AWA_TEST_LOG=str(handler_dir / "ran.jsonl"))


def _ran(handler_dir: Path) -> list[dict]:
    log = handler_dir / "ran.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _states(url: str) -> Counter:
    with psycopg.connect(url) as conn:
        return Counter(dict(conn.execute("SELECT state::text, count(*) FROM awa.jobs GROUP BY 1").fetchall()))


def _enqueue_keyed(url: str, pq: PartitionedQueue, n: int) -> None:
    with Client(url) as client:
        client.insert_many_copy([{"i": i} for i in range(n)], kind="charge",
                                opts=[pq.route_by_key(f"customer-{i}") for i in range(n)])


def test_work_until_empty_serves_every_partition(database_url, handler_dir):
    pq = PartitionedQueue("orders", 3)
    _enqueue_keyed(database_url, pq, 30)
    result = run_awa("work", "--handlers", "shop_tasks", "--queue", "orders", "--partitions", "3",
                     "--max-workers", "2", "--until-empty", cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 0, result.stderr
    assert "working orders, orders__p1, orders__p2" in result.stderr
    ran = _ran(handler_dir)
    assert sorted(r["i"] for r in ran) == list(range(30))
    for r in ran:
        assert r["queue"] == pq.queue_for_key(f"customer-{r['i']}")
    assert {r["queue"] for r in ran} == set(pq.physical_queues)
    assert _states(database_url) == Counter({"completed": 30})


def test_work_with_shared_slots_serves_every_partition_from_one_entry(database_url, handler_dir):
    pq = PartitionedQueue("orders", 3)
    _enqueue_keyed(database_url, pq, 30)
    result = run_awa("work", "--handlers", "shop_tasks", "--queue", "orders", "--partitions", "3", "--shared-slots",
                     "--max-workers", "2", "--until-empty", cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 0, result.stderr
    assert "working orders, orders__p1, orders__p2" in result.stderr
    ran = _ran(handler_dir)
    assert sorted(r["i"] for r in ran) == list(range(30))
    assert {r["queue"] for r in ran} == set(pq.physical_queues)
    assert _states(database_url) == Counter({"completed": 30})


def test_shared_slots_in_a_config_file_must_be_a_bool(database_url, handler_dir):
    config = handler_dir / "worker.json"
    config.write_text(json.dumps({
        "handlers": ["shop_tasks"],
        "queues": [{"name": "orders", "partitions": 2, "shared_slots": "yes", "max_workers": 2}],
    }))
    result = run_awa("work", "--config", str(config), "--until-empty", cwd=handler_dir,
                     env=_env(database_url, handler_dir))
    assert result.returncode == 2, result.stderr
    assert "queues[0] shared_slots must be true or false" in result.stderr


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_work_from_a_config_file(database_url, handler_dir, fmt):
    pq = PartitionedQueue("orders", 2)
    _enqueue_keyed(database_url, pq, 10)
    if fmt == "toml":
        config = handler_dir / "worker.toml"
        config.write_text(textwrap.dedent(
            """
            handlers = ["shop_tasks"]
            shutdown_timeout = 5

            [[queues]]
            name = "orders"
            partitions = 2
            max_workers = 3

            [options]
            poll_interval_ms = 50
            """
        ))
    else:
        config = handler_dir / "worker.json"
        config.write_text(json.dumps({
            "handlers": ["shop_tasks"],
            "global_max_workers": 4,
            "queues": [{"name": "orders", "partitions": 2, "min_workers": 1, "weight": 2}],
        }))
    result = run_awa("work", "--config", str(config), "--until-empty", cwd=handler_dir,
                     env=_env(database_url, handler_dir))
    assert result.returncode == 0, result.stderr
    assert sorted(r["i"] for r in _ran(handler_dir)) == list(range(10))


def _start_worker(database_url: str, handler_dir: Path) -> subprocess.Popen:
    env = _env(database_url, handler_dir)
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT prints every thread's stack (see the signal test)
    proc = subprocess.Popen(
        [sys.executable, "-m", "awa", "work", "--handlers", "shop_tasks", "--status-every", "0"],
        cwd=handler_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,  # the signal test sends SIGINT
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "awa.cli.work: working " in line:  # a log line: timestamp, level, logger, message
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"worker did not start: {''.join(seen)}")


def _enqueue_and_wait(database_url: str, handler_dir: Path, n: int) -> None:
    """n keyed jobs for the running worker; returns once it ran them (or after 30 s)."""
    _enqueue_keyed(database_url, PartitionedQueue("orders", 1), n)
    deadline = time.monotonic() + 30
    while len(_ran(handler_dir)) < n and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("signum, expected", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signals_stop_the_worker_gracefully(database_url, handler_dir, signum, expected):
    proc = _start_worker(database_url, handler_dir)
    try:
        _enqueue_and_wait(database_url, handler_dir, 5)
        proc.send_signal(signum)
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # Still running: have faulthandler print every thread's stack, so a
            # hang in shutdown says where it is.
            proc.send_signal(signal.SIGABRT)
            _out, err = proc.communicate(timeout=30)
            pytest.fail(f"the worker did not stop within 60 s of {signal.Signals(signum).name}; its stacks:\n{err[-12000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == expected, err
    assert "stopped:" in err and "Traceback" not in err
    assert _states(database_url) == Counter({"completed": 5})


def test_sigusr1_stacks_reach_a_stderr_without_a_file_descriptor(monkeypatch):
    # faulthandler writes to a file descriptor only; an embedding program's
    # stderr may have none, and the handler still prints every thread.
    import io
    import threading

    from awa.cli import work

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="waiting", daemon=True)
    other.start()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    try:
        work._dump_stacks(signal.SIGUSR1, None)
        text = sys.stderr.getvalue()
    finally:
        stop.set()
    assert text.count("Thread 0x") >= 2, text  # this thread and the waiting one
    assert ", in wait\n" in text, text  # the waiting thread's frame


def test_sigusr1_prints_every_threads_stack_and_the_worker_goes_on(database_url, handler_dir):
    proc = _start_worker(database_url, handler_dir)
    try:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        assert proc.poll() is None, "SIGUSR1 stopped the worker"
        _enqueue_and_wait(database_url, handler_dir, 3)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.count("Thread 0x") >= 2, err  # the main thread and the runtime's
    assert 'File "' in err and "work.py" in err, err
    assert _states(database_url) == Counter({"completed": 3})


def test_missing_handler_module_is_a_usage_error(database_url, handler_dir):
    result = run_awa("work", "--handlers", "no_such_module_xyz", cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "no_such_module_xyz" in result.stderr


def test_module_without_register_is_a_usage_error(database_url, handler_dir):
    (handler_dir / "empty_mod.py").write_text("X = 1\n")
    result = run_awa("work", "--handlers", "empty_mod", cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 2
    assert "no function register(client)" in result.stderr


def test_no_handlers_is_a_usage_error(database_url):
    result = run_awa("work", "--queue", "orders", database_url=database_url)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "--handlers" in result.stderr


def test_bad_config_key_is_a_usage_error(database_url, handler_dir):
    config = handler_dir / "bad.toml"
    config.write_text('handlers = ["shop_tasks"]\n[[queues]]\nname = "orders"\nmax_wrokers = 2\n')
    result = run_awa("work", "--config", str(config), cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "max_wrokers" in result.stderr


def test_invalid_queue_config_is_a_usage_error(database_url, handler_dir):
    # min_workers without global_max_workers is refused by the runtime's validation.
    config = handler_dir / "weighted.json"
    config.write_text(json.dumps({"handlers": ["shop_tasks"], "queues": [{"name": "orders", "min_workers": 2}]}))
    result = run_awa("work", "--config", str(config), cwd=handler_dir, env=_env(database_url, handler_dir))
    assert result.returncode == 2
    assert_one_line_error(result.stderr)
    assert "global_max_workers" in result.stderr


@pytest.mark.slow
def test_work_embedded_until_empty_exits_cleanly(handler_dir):
    env = cli_env(None, AWA_TEST_LOG=str(handler_dir / "ran.jsonl"))
    result = run_awa("work", "--embedded", "--handlers", "shop_tasks", "--until-empty", cwd=handler_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert "embedded PostgreSQL at" in result.stderr and "the served queues are empty" in result.stderr
