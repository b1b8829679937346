"""Failures you can see: `awa work` logs by subprocess, the status line, --until-empty exit codes."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from awa.client import Client
from test_cli_helpers import cli_env, run_awa

HANDLERS = textwrap.dedent(
    """
    def register(client):
        @client.task("charge", queue="shop")
        def charge(job):
            if job.args.get("fail"):
                raise ValueError(f"card {job.args['n']} declined")
    """
)


@pytest.fixture
def handler_dir(tmp_path: Path) -> Path:
    (tmp_path / "shop_tasks.py").write_text(HANDLERS)
    return tmp_path


def _enqueue(url, jobs, **kwargs):
    with Client(url) as client:
        return client.insert_many_copy(jobs, kind="charge", queue="shop", **kwargs)


def _work(url, cwd, *extra, timeout=120):
    return run_awa("work", "--handlers", "shop_tasks", "--until-empty", "--status-every", "0.5", *extra,
                   env=cli_env(url), cwd=cwd, timeout=timeout)


def test_each_failed_attempt_is_logged_once_and_only_retries_left_exits_4(database_url, handler_dir):
    ok, bad = _enqueue(database_url, [{"n": 1}, {"n": 2, "fail": True}])
    with Client(database_url) as client:
        client.insert({"x": 1}, kind="unknown_kind", queue="shop")
    result = _work(database_url, handler_dir, "--retry-grace", "0.5")
    assert result.returncode == 4, result.stderr
    err = result.stderr
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    failed = [line for line in err.splitlines() if "failed:" in line]
    assert len([line for line in failed if f"job {bad.id} " in line]) == 1  # once per attempt
    assert re.search(stamp + rf" WARNING awa\.worker: job {bad.id} \(kind charge, queue shop\) attempt 1/25 failed: "
                     r"ValueError: card 2 declined; next attempt in \d+\.\ds \(at \d\d:\d\d:\d\d\)", err), err
    assert "no handler registered for job kind 'unknown_kind'" in err
    assert re.search(r"failed attempts 2 \(2 retrying, 0 failed for good\)", err), err
    assert "only 2 job(s) waiting for a retry are left; exiting (4)" in err
    with Client(database_url) as client:
        assert client.get_job(ok.id).state.value == "completed"
        assert client.get_job(bad.id).state.value == "retryable"


def test_json_logs_carry_the_attempts_fields(database_url, handler_dir):
    [bad] = _enqueue(database_url, [{"n": 7, "fail": True}], max_attempts=1)
    result = _work(database_url, handler_dir, "--log-format", "json")
    assert result.returncode == 0, result.stderr  # failed for good: nothing left to wait for
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    [failure] = [r for r in records if r.get("job_id") == bad.id]
    assert failure["level"] == "error" and failure["outcome"] == "failed"
    assert failure["error"] == "ValueError: card 7 declined"
    assert (failure["kind"], failure["queue"], failure["attempt"], failure["max_attempts"]) == ("charge", "shop", 1, 1)
    assert "failed for good after attempt 1/1" in failure["message"]
    assert any(r["message"] == "the served queues are empty" for r in records)


def test_log_level_warning_hides_the_status_lines(database_url, handler_dir):
    _enqueue(database_url, [{"n": 1}])
    result = _work(database_url, handler_dir, "--log-level", "warning")
    assert result.returncode == 0, result.stderr
    assert "INFO" not in result.stderr and "working shop" not in result.stderr
    env_level = run_awa("work", "--handlers", "shop_tasks", "--until-empty", env=cli_env(database_url,
                        AWA_LOG_LEVEL="bogus"), cwd=handler_dir)
    assert env_level.returncode == 2 and "AWA_LOG_LEVEL must be one of" in env_level.stderr


def test_max_wait_exits_5_when_the_queues_are_not_empty_in_time(database_url, handler_dir):
    import datetime as dt

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    _enqueue(database_url, [{"n": 1}], run_at=later)  # scheduled: --until-empty alone would wait an hour
    result = _work(database_url, handler_dir, "--max-wait", "1")
    assert result.returncode == 5, result.stderr
    assert "1 job(s) not finished after --max-wait 1s" in result.stderr
    usage = _work(database_url, handler_dir, "--max-wait", "0")
    assert usage.returncode == 2


def test_awa_help_documents_the_new_exit_codes():
    result = run_awa("--help")
    assert "4    awa work --until-empty: only jobs waiting for a retry are left" in result.stdout
    assert "5    awa work --until-empty --max-wait" in result.stdout
