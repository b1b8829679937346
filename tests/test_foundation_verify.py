"""`make verify`'s bookkeeping: a missing TLC is SKIPPED with its reason, failures are failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scripts.verify import TLC_SKIPPED, Step, summarize, table

ROOT = Path(__file__).resolve().parents[1]


def _path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with every command of the current one except ``hidden`` (e.g. java)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = bin_dir / name
            if name not in hidden and not target.exists():
                target.symlink_to(os.path.join(folder, name))
    return str(bin_dir)


def test_run_tlc_without_java_prints_skip_and_exits_with_the_skip_code(tmp_path):
    env = dict(os.environ)
    env["HOME"] = str(tmp_path)  # no cached jar
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["TLA2TOOLS_JAR"] = str(tmp_path / "missing.jar")
    env["PATH"] = _path_without(tmp_path, "java", "curl", "wget")
    result = subprocess.run([shutil.which("bash") or "/bin/bash", "scripts/run-tlc.sh"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == TLC_SKIPPED, result.stdout + result.stderr
    assert result.stdout.startswith("SKIP:")


def test_tlc_skip_is_reported_as_skipped_with_its_reason():
    step = Step("TLC model checks", ["bash", "scripts/run-tlc.sh"])
    summarize(step, "SKIP: java is not installed (TLC needs Java 11+)\n", TLC_SKIPPED)
    assert step.status == "SKIPPED"
    assert step.detail == "java is not installed (TLC needs Java 11+)"
    assert "SKIPPED" in table([step])


def test_exit_code_three_from_another_step_is_a_failure():
    step = Step("Test suite", [])
    summarize(step, "Exit: DATABASE_URL error: cannot connect\n", 3)
    assert step.status == "FAILED"


def test_pytest_counts_are_summarised():
    step = Step("Test suite", [])
    summarize(step, "....\n=== 12 passed, 2 failed, 1 skipped in 3.0s ===\n", 1)
    assert step.status == "FAILED"
    assert step.detail == "12 passed, 2 failed, 1 skipped"
