"""Helpers (no tests here) for running the ``awa`` command line in a subprocess, as a script would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWA_DEBUG"}}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_awa(
    *args: str,
    database_url: str | None = None,
    input: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awa", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else cli_env(database_url),
        cwd=cwd or ROOT,
    )


def assert_one_line_error(stderr: str) -> None:
    """Expected failures are one 'awa: error:' line, never a traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("awa: error:")]
    assert len(errors) == 1, stderr


def sigint_as_a_terminal_sends_it() -> None:
    """``preexec_fn`` for a CLI child that a test interrupts with SIGINT.

    A background job of a non-interactive shell (``make verify &``, ``nohup``)
    starts with SIGINT ignored, every process below inherits that, and Python
    keeps an inherited SIG_IGN: the child would never see the test's Ctrl-C.
    Resetting it to the default lets Python install its KeyboardInterrupt
    handler, as it does under a terminal. (It runs between fork and exec: no
    imports or locks in here.)
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
