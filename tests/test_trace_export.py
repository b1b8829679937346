"""Trace export: a lifecycle-machine run against PostgreSQL, written out as spec
actions + checkpoints, validated by the Python mirror (always) and by TLC (when
a tla2tools.jar is available)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from verification.trace import LifecycleTrace, to_tla, validate
from tests.machines._support import close_machine
from tests.machines.lifecycle_machine import lifecycle_machine_class

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recorded_trace(database_factory) -> LifecycleTrace:
    """The longest trace of a short, derandomised lifecycle-machine run."""
    machine = lifecycle_machine_class(database_factory(migrated=True), spec_mode=True)
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(max_examples=30, stateful_step_count=40, derandomize=True,
                              deadline=None, phases=[Phase.generate]),
        )
    finally:
        close_machine(machine)
    trace = max(machine.recorded, key=lambda t: len(t.steps))
    actions = {a for a, _ in trace.steps}
    assert {"EnqueueKeyed", "Claim"} <= actions, trace.steps
    return trace


def test_trace_round_trips_through_json_and_validates(recorded_trace: LifecycleTrace, tmp_path: Path) -> None:
    path = recorded_trace.write(tmp_path / "trace.json")
    loaded = LifecycleTrace.load(path)
    assert loaded.steps == recorded_trace.steps
    assert loaded.checkpoints == recorded_trace.checkpoints
    verdict = validate(loaded)
    assert verdict.ok, verdict.reason
    assert verdict.steps_checked == len(recorded_trace.steps)
    assert verdict.checkpoints_checked == len(recorded_trace.checkpoints) > 1

    cli = subprocess.run([sys.executable, "-m", "verification.trace", "validate", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith("VALID:")


def _claim_index(trace: LifecycleTrace) -> int:
    return next(i for i, (a, _) in enumerate(trace.steps) if a == "Claim")


def test_trace_with_a_step_removed_is_rejected(recorded_trace: LifecycleTrace) -> None:
    i = _claim_index(recorded_trace)
    broken = dataclasses.replace(recorded_trace, steps=recorded_trace.steps[:i] + recorded_trace.steps[i + 1:])
    verdict = validate(broken)
    assert not verdict.ok
    assert "not enabled" in verdict.reason or "differs" in verdict.reason


def test_trace_whose_database_state_disagrees_is_rejected(recorded_trace: LifecycleTrace) -> None:
    """A checkpoint the spec would not reach (a lease bumped) fails validation."""
    after, state = recorded_trace.checkpoints[-1]
    tampered = state._replace(lease=(state.lease[0] + 1,) + state.lease[1:])
    broken = dataclasses.replace(recorded_trace, checkpoints=recorded_trace.checkpoints[:-1] + [(after, tampered)])
    verdict = validate(broken)
    assert not verdict.ok and "differs" in verdict.reason and "lease" in verdict.reason


def test_trace_renders_as_a_tla_trace_module(recorded_trace: LifecycleTrace) -> None:
    text, cfg = to_tla(recorded_trace)
    assert "EXTENDS PartitionedQueueLifecycle" in text
    assert text.count('[action |-> "') == len(recorded_trace.steps)
    assert "INVARIANTS\n    TraceNotAccepted" in cfg
    assert f"NumJobs = {recorded_trace.constants.num_jobs}" in cfg


def _tlc(trace_path: Path) -> subprocess.CompletedProcess:
    # The jar is found the same way as scripts/run-tlc.sh finds it (TLA2TOOLS_JAR or a cache).
    return subprocess.run(["bash", str(ROOT / "scripts" / "validate-trace-tlc.sh"), str(trace_path)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)


def test_tlc_accepts_the_trace_and_rejects_a_tampered_one(recorded_trace: LifecycleTrace, tmp_path: Path) -> None:
    good = _tlc(recorded_trace.write(tmp_path / "good.json"))
    if good.returncode == 3:
        pytest.skip(good.stdout.strip())
    assert good.returncode == 0, good.stdout + good.stderr
    assert "TRACE ACCEPTED" in good.stdout

    data = json.loads((tmp_path / "good.json").read_text())
    i = _claim_index(recorded_trace)
    del data["steps"][i]
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(data))
    bad = _tlc(bad_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "TRACE REJECTED" in bad.stderr
