"""Graceful shutdown: a grace period, "stopped" only when true, a second
signal exits at once, and a synchronous handler never runs twice at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from awa.client import Client
from test_cli_helpers import cli_env, run_awa, sigint_as_a_terminal_sends_it
from worker_support.helpers import FAST, WorkerClient

HANDLERS = textwrap.dedent(
    """
    import json, os, time

    LOG = os.environ["AWA_TEST_LOG"]

    def _note(event, job):
        with open(LOG, "a") as f:
            f.write(json.dumps({"ev": event, "id": job.id, "pid": os.getpid(), "t": time.time()}) + "\\n")

    def register(client):
        @client.task("slow", queue="slowq")
        def slow(job):
            _note("start", job)
            time.sleep(job.args["s"])
            _note("end", job)
    """
)


@pytest.fixture
def handler_dir(tmp_path: Path) -> Path:
    (tmp_path / "slow_tasks.py").write_text(HANDLERS)
    return tmp_path


def _events(handler_dir: Path) -> list[dict]:
    log = handler_dir / "ran.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _start(database_url: str, handler_dir: Path, *extra: str) -> subprocess.Popen:
    env = cli_env(database_url, AWA_TEST_LOG=str(handler_dir / "ran.jsonl"))
    return subprocess.Popen(
        [sys.executable, "-m", "awa", "work", "--handlers", "slow_tasks", "--status-every", "0", *extra],
        cwd=handler_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,
    )


def _wait_started(handler_dir: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(e["ev"] == "start" for e in _events(handler_dir)) < n:
        assert time.monotonic() < deadline, "the handler did not start"
        time.sleep(0.05)


def _job_state(url: str) -> tuple[str, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT state::text, attempt FROM awa.jobs").fetchone()


def test_sync_handler_past_the_grace_period_never_runs_twice_at_once(database_url, handler_dir):
    with Client(database_url) as client:
        client.insert({"s": 4}, kind="slow", queue="slowq")
    proc = _start(database_url, handler_dir, "--grace-period", "0.5")
    try:
        _wait_started(handler_dir, 1)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        exited = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
    exited_wall = time.time()
    assert proc.returncode == 0, err
    assert exited - signalled < 3, f"waited for the sync handler: {exited - signalled:.1f}s\n{err}"
    assert "stopped:" not in err and "not stopped cleanly" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    # A second worker runs the released job; its run starts after the first process is gone.
    second = run_awa("work", "--handlers", "slow_tasks", "--queue", "slowq", "--until-empty", "--max-wait", "30",
                     "--status-every", "0", cwd=handler_dir,
                     env=cli_env(database_url, AWA_TEST_LOG=str(handler_dir / "ran.jsonl")))
    assert second.returncode == 0, second.stderr
    starts = [e for e in _events(handler_dir) if e["ev"] == "start"]
    ends = [e for e in _events(handler_dir) if e["ev"] == "end"]
    assert len(starts) == 2 and len(ends) == 1, _events(handler_dir)
    assert starts[0]["pid"] != starts[1]["pid"] == ends[0]["pid"]
    assert starts[1]["t"] >= exited_wall - 0.5  # never while the first was still running
    assert _job_state(database_url) == ("completed", 1)  # the release did not use up an attempt


def test_a_second_signal_exits_at_once_without_a_traceback(database_url, handler_dir):
    with Client(database_url) as client:
        client.insert({"s": 20}, kind="slow", queue="slowq")
    proc = _start(database_url, handler_dir, "--grace-period", "60")
    try:
        _wait_started(handler_dir, 1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert took < 3, took
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "stopped:" not in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e9"])
def test_grace_period_is_validated(database_url, handler_dir, value):
    result = run_awa("work", "--handlers", "slow_tasks", "--grace-period", value, cwd=handler_dir,
                     env=cli_env(database_url, AWA_TEST_LOG=str(handler_dir / "ran.jsonl")))
    assert result.returncode == 2, result.stderr
    assert "grace period" in result.stderr and "Traceback" not in result.stderr


def test_library_shutdown_keeps_a_running_sync_job_leased_then_completes_it(database_url):
    client = WorkerClient(database_url)
    started, finished = [], []

    @client.task("slow", queue="lib_slow")
    def slow(job):
        started.append(time.monotonic())
        time.sleep(1.5)
        finished.append(time.monotonic())

    client.start([("lib_slow", 1)], **FAST)
    try:
        client.insert({"n": 1}, kind="slow", queue="lib_slow")
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started
        client.shutdown(200)
        assert not finished
        assert _job_state(database_url) == ("running", 1)  # not released while its handler runs
        deadline = time.monotonic() + 10
        while _job_state(database_url)[0] != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert finished and _job_state(database_url) == ("completed", 1)
    finally:
        client.shutdown(0)
        client.close()
