"""Traces of spec actions recorded from runs against PostgreSQL.

A state machine that drives the real implementation records every step it
takes as an action of ``specs/PartitionedQueueLifecycle.tla`` (``Claim(w, j)``,
``Complete(w)``, ``Expire(j)`` ...) together with checkpoints: the spec state
abstracted from the database rows after a step. A trace is valid when

* replaying the actions through the Python mirror (``verification.mirrors.lifecycle``)
  keeps every action enabled and every invariant true, and
* the replayed state equals each checkpoint (the database did exactly what
  the spec says, not merely something the spec allows).

The same trace can be rendered as a small TLA+ module that constrains the
spec's behaviour to the recorded one (the trace-validation pattern) so TLC
can check it too: ``scripts/validate-trace-tlc.sh TRACE.json``.

Command line::

    python -m verification.trace validate TRACE.json
    python -m verification.trace tla TRACE.json OUTDIR   # writes module + cfg
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from verification.mirrors import lifecycle as spec
from verification.mirrors import lifecycle_runs

FORMAT = "awa-lifecycle-trace/1"
TRACE_MODULE = "PartitionedQueueLifecycleTrace"


def abstract_lifecycle_state(
    constants: spec.LifecycleConstants,
    *,
    jobs: Sequence[Mapping[str, Any]],
    lanes: Mapping[tuple[int, int], tuple[int, int]],
    holding: Mapping[int, tuple[int, int]],
) -> spec.LifecycleState:
    """The spec state of database rows (thin wrapper kept stable for callers)."""
    return lifecycle_runs.abstract_state(constants, jobs, lanes, holding)


@dataclass
class LifecycleTrace:
    constants: spec.LifecycleConstants
    steps: list[tuple[str, tuple]] = field(default_factory=list)
    #: (number of steps taken, spec state abstracted from the database then)
    checkpoints: list[tuple[int, spec.LifecycleState]] = field(default_factory=list)

    @property
    def states(self) -> "_CheckpointAppender":
        return _CheckpointAppender(self)

    # -- serialisation -----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        c = self.constants
        return {
            "format": FORMAT,
            "constants": {
                "NumJobs": c.num_jobs, "NumPartitions": c.num_partitions, "NumShards": c.num_shards,
                "NumKeys": c.num_keys, "NumWorkers": c.num_workers, "MaxAttempts": c.max_attempts,
                "GuardedFinalize": c.guarded_finalize, "CursorClaim": c.cursor_claim,
            },
            "steps": [{"action": a, "params": [_jsonable(p) for p in ps]} for a, ps in self.steps],
            "checkpoints": [{"after": n, "state": _state_json(s)} for n, s in self.checkpoints],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LifecycleTrace":
        if data.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} trace (format={data.get('format')!r})")
        k = data["constants"]
        constants = spec.LifecycleConstants(
            num_jobs=k["NumJobs"], num_partitions=k["NumPartitions"], num_shards=k["NumShards"],
            num_keys=k["NumKeys"], num_workers=k["NumWorkers"], max_attempts=k["MaxAttempts"],
            guarded_finalize=k.get("GuardedFinalize", True), cursor_claim=k.get("CursorClaim", True),
        )
        steps = [(s["action"], tuple(_from_jsonable(p) for p in s["params"])) for s in data["steps"]]
        checkpoints = [(c["after"], _state_from_json(c["state"])) for c in data.get("checkpoints", [])]
        return cls(constants, steps, checkpoints)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LifecycleTrace":
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


class _CheckpointAppender:
    """``trace.states.append(state)`` records a checkpoint after the current step."""

    def __init__(self, trace: LifecycleTrace) -> None:
        self._trace = trace

    def append(self, state: spec.LifecycleState) -> None:
        n = len(self._trace.steps)
        cps = self._trace.checkpoints
        if cps and cps[-1][0] == n:
            cps[-1] = (n, state)
        else:
            cps.append((n, state))

    def __len__(self) -> int:
        return len(self._trace.checkpoints)


@dataclass
class TraceVerdict:
    ok: bool
    steps_checked: int
    checkpoints_checked: int
    reason: str | None = None


def validate(trace: LifecycleTrace) -> TraceVerdict:
    """Replay through the Python mirror and compare every checkpoint."""
    result = lifecycle_runs.validate_trace(trace.steps, trace.constants)
    if not result.ok:
        return TraceVerdict(False, result.steps_checked, 0, f"step {result.failed_step}: {result.reason}")
    states = result.states  # states[i] = after i steps
    checked = 0
    for after, expected in trace.checkpoints:
        if after >= len(states):
            return TraceVerdict(False, result.steps_checked, checked, f"checkpoint after step {after} is past the trace")
        if states[after] != expected:
            diffs = [
                f"{name}: spec {a} database {b}"
                for name, a, b in zip(spec.LifecycleState._fields, states[after], expected)
                if a != b
            ]
            return TraceVerdict(False, result.steps_checked, checked, f"checkpoint after {after} steps differs: {'; '.join(diffs)}")
        checked += 1
    return TraceVerdict(True, result.steps_checked, checked)


# -- TLA+ rendering -----------------------------------------------------------


def _tla(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, (tuple, list)):
        return "<<" + ", ".join(_tla(v) for v in value) + ">>"
    raise TypeError(f"cannot render {value!r} as TLA+")


def _tla_seq(values: Sequence[Any]) -> str:
    # A function over 1..n written as a sequence literal: in TLA+ a sequence
    # IS a function on 1..n, so it equals [j \in Jobs |-> ...].
    return "<<" + ", ".join(_tla(v) for v in values) + ">>"


def to_tla(trace: LifecycleTrace, module: str = TRACE_MODULE) -> tuple[str, str]:
    """A TLA+ module (+ cfg) whose behaviours are exactly the recorded run.

    ``TraceNext`` allows step i only as the recorded action with the recorded
    parameters, and requires the resulting state to match the checkpoint taken
    after it. The invariant ``TraceNotAccepted`` says "the last step is never
    reached", so TLC reporting it VIOLATED (exit 12) means the whole trace is
    a behaviour of the spec; anything else means it is not.
    """
    c = trace.constants
    steps = ",\n      ".join(
        f'[action |-> "{a}", params |-> {_tla(list(p))}]' for a, p in trace.steps
    ) or ""
    checks = {after: state for after, state in trace.checkpoints}
    cp_lines = []
    for after, state in sorted(checks.items()):
        if after == 0:
            continue  # Init is the spec's own; checkpoints constrain the steps
        arm = "[] " if cp_lines else "   "
        cp_lines.append(
            f"      {arm}i' = {after + 1} -> "
            f"/\\ status' = {_tla_seq(state.status)} "
            f"/\\ lease' = {_tla_seq(state.lease)} "
            f"/\\ seq' = {_tla_seq(state.seq)} "
            f"/\\ holding' = {_tla_seq(state.holding)}"
        )
    checkpoint_expr = ("CASE\n" + "\n".join(cp_lines) + "\n      [] OTHER -> TRUE") if cp_lines else "TRUE"
    text = f"""---- MODULE {module} ----
\\* Generated by verification.trace from a run against PostgreSQL. Do not edit.
EXTENDS PartitionedQueueLifecycle, Sequences, TLC

VARIABLE i

Trace == <<
      {steps}
    >>

P(n) == Trace[i].params[n]

Act ==
    CASE Trace[i].action = "EnqueueKeyed"   -> EnqueueKeyed(P(1))
      [] Trace[i].action = "EnqueueUnkeyed" -> EnqueueUnkeyed(P(1))
      [] Trace[i].action = "Claim"          -> Claim(P(1), P(2))
      [] Trace[i].action = "Heartbeat"      -> Heartbeat(P(1))
      [] Trace[i].action = "Complete"       -> Complete(P(1))
      [] Trace[i].action = "Fail"           -> Fail(P(1))
      [] Trace[i].action = "DropStale"      -> DropStale(P(1))
      [] Trace[i].action = "Crash"          -> Crash(P(1))
      [] Trace[i].action = "Expire"         -> Expire(P(1))
      [] Trace[i].action = "Rescue"         -> Rescue(P(1))

Checkpoint ==
    {checkpoint_expr}

TraceInit == Init /\\ i = 1

TraceNext ==
    /\\ i <= Len(Trace)
    /\\ Act
    /\\ i' = i + 1
    /\\ Checkpoint

TraceSpec == TraceInit /\\ [][TraceNext]_<<vars, i>>

TraceNotAccepted == i <= Len(Trace)
====
"""
    cfg = f"""\\* Generated by verification.trace. TLC must report TraceNotAccepted violated.
CONSTANTS
    NumJobs = {c.num_jobs}
    NumPartitions = {c.num_partitions}
    NumShards = {c.num_shards}
    NumKeys = {c.num_keys}
    NumWorkers = {c.num_workers}
    MaxAttempts = {c.max_attempts}
    GuardedFinalize = {_tla(c.guarded_finalize)}
    CursorClaim = {_tla(c.cursor_claim)}

SPECIFICATION TraceSpec
CHECK_DEADLOCK FALSE

INVARIANTS
    TraceNotAccepted
"""
    return text, cfg


def write_tla(trace: LifecycleTrace, outdir: str | Path, module: str = TRACE_MODULE) -> tuple[Path, Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    text, cfg = to_tla(trace, module)
    tla_path = outdir / f"{module}.tla"
    cfg_path = outdir / f"{module}.cfg"
    tla_path.write_text(text, encoding="utf-8")
    cfg_path.write_text(cfg, encoding="utf-8")
    return tla_path, cfg_path


# -- JSON helpers ---------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_jsonable(v) for v in value)
    return value


def _state_json(s: spec.LifecycleState) -> dict[str, Any]:
    return {name: _jsonable(value) for name, value in zip(spec.LifecycleState._fields, s)}


def _state_from_json(d: Mapping[str, Any]) -> spec.LifecycleState:
    return spec.LifecycleState(
        **{name: (_from_jsonable(d[name]) if name != "next_id" else d[name]) for name in spec.LifecycleState._fields}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verification.trace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="replay a trace through the Python mirror")
    v.add_argument("trace")
    t = sub.add_parser("tla", help="write the TLA+ trace-validation module and cfg")
    t.add_argument("trace")
    t.add_argument("outdir")
    args = parser.parse_args(argv)
    trace = LifecycleTrace.load(args.trace)
    if args.command == "validate":
        verdict = validate(trace)
        status = "VALID" if verdict.ok else "INVALID"
        print(f"{status}: {verdict.steps_checked} steps, {verdict.checkpoints_checked} checkpoints"
              + (f"; {verdict.reason}" if verdict.reason else ""))
        return 0 if verdict.ok else 1
    tla_path, cfg_path = write_tla(trace, args.outdir)
    print(tla_path)
    print(cfg_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
