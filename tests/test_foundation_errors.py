"""Failure modes of the foundation: a wrong DATABASE_URL, pytest with no tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from awa.db.url import connect_or_explain, describe
from awa.errors import AwaError, DatabaseUnavailable, ValidationError

ROOT = Path(__file__).resolve().parents[1]
BAD_URL = "postgresql://alice:s3cretpw@127.0.0.1:1/orders"


def test_validation_error_is_both_base_error_and_value_error():
    assert issubclass(ValidationError, AwaError)
    assert issubclass(ValidationError, ValueError)


def test_describe_names_host_port_database_but_never_the_password():
    text = describe(BAD_URL)
    assert text == "alice@127.0.0.1:1/orders"
    assert "s3cret" not in text


def test_unreachable_database_is_one_clear_line():
    with pytest.raises(DatabaseUnavailable) as info:
        connect_or_explain(BAD_URL, connect_timeout=2)
    message = str(info.value)
    assert "127.0.0.1:1/orders" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_test_session_with_bad_database_url_exits_nonzero_without_traceback():
    # Any test id will do: the session fails before collection, in conftest.
    target = "tests/test_foundation_errors.py::test_validation_error_is_both_base_error_and_value_error"
    env = {**os.environ, "DATABASE_URL": BAD_URL}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "s3cret" not in output
    assert "127.0.0.1:1/orders" in output
    assert "Traceback" not in output


def test_run_tests_treats_no_tests_collected_as_failure(tmp_path):
    empty = tmp_path / "test_empty.py"
    empty.write_text("# no tests here\n")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.run_tests", "-q", "-p", "no:cacheprovider", "--noconftest", str(empty)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "collected no tests" in result.stderr


def test_embedded_server_does_not_outlive_a_hard_killed_owner(tmp_path):
    """SIGKILL skips atexit; the watchdog must still stop the server and delete its directory."""
    import signal
    import time

    import psycopg

    owner = (
        "import os, signal, sys\n"
        "from awa.db.embedded import EmbeddedPostgres\n"
        "server = EmbeddedPostgres().start()\n"
        "print(server.url, server._root, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", owner], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    url, root = result.stdout.split()
    deadline = time.monotonic() + 30
    while Path(root).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(root).exists(), "data directory left behind"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
