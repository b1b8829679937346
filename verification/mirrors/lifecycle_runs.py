"""Recorded runs against the lifecycle mirror (``specs/PartitionedQueueLifecycle.tla``).

Two entry points serve the tests that drive the real PostgreSQL
implementation:

* :func:`validate_trace` replays a recorded list of ``(action, params)``
  steps in spec vocabulary, checking that each step is enabled and that
  every invariant holds afterwards;
* :func:`abstract_state` builds a spec state from rows read out of the
  database, for :func:`verification.mirrors.lifecycle.violated_invariants`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from verification.mirrors.lifecycle import (
    ACTION_PARAMS,
    ACTIONS,
    IDLE,
    NO_LANE,
    RUNNING,
    UNBORN,
    Attempt,
    Lane,
    LifecycleConstants,
    LifecycleState,
    initial_state,
    terminal_is_final,
    violated_invariants,
)

Step = tuple[str, Sequence[Any] | Mapping[str, Any]]


@dataclass
class TraceResult:
    """Outcome of :func:`validate_trace`."""

    ok: bool
    steps_checked: int
    final_state: LifecycleState
    failed_step: int | None = None  # 0-based index of the offending step
    reason: str | None = None
    states: list[LifecycleState] = field(default_factory=list)


def _params_of(action: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple:
    if isinstance(params, Mapping):
        names = ACTION_PARAMS[action]
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"{action}: missing parameter(s) {missing}")
        return tuple(params[n] for n in names)
    return tuple(params)


def validate_trace(
    steps: Iterable[Step],
    constants: LifecycleConstants,
    start: LifecycleState | None = None,
) -> TraceResult:
    """Replay ``steps`` from ``start`` (Init by default).

    Each step is ``(action_name, params)`` in spec vocabulary, params either
    positional (spec order) or a mapping (``{"w": 1, "j": 2}``).  The replay
    stops at the first step that is not enabled, violates an invariant, or
    breaks ``TerminalIsFinal``.
    """
    state = start if start is not None else initial_state(constants)
    visited = [state]
    checked = 0
    for index, (action, raw) in enumerate(steps):
        if action not in ACTIONS:
            return TraceResult(False, checked, state, index, f"unknown action {action!r}",
                               visited)
        params = _params_of(action, raw)
        nxt = ACTIONS[action](constants, state, *params)
        if nxt is None:
            return TraceResult(False, checked, state, index,
                               f"{action}{params} is not enabled", visited)
        if not terminal_is_final(constants, state, nxt):
            return TraceResult(False, checked, nxt, index,
                               f"{action}{params} breaks TerminalIsFinal", visited)
        bad = violated_invariants(constants, nxt)
        if bad:
            return TraceResult(False, checked, nxt, index,
                               f"{action}{params} breaks {', '.join(bad)}", visited)
        state = nxt
        visited.append(state)
        checked += 1
    return TraceResult(True, checked, state, None, None, visited)


def abstract_state(
    constants: LifecycleConstants,
    jobs: Sequence[Mapping[str, Any]],
    lanes: Mapping[Lane, tuple[int, int]],
    holding: Mapping[int, Attempt] | None = None,
) -> LifecycleState:
    """Build a spec state from rows read out of the database.

    ``jobs`` lists one mapping per job id 1..n, in id order, with keys
    ``status`` (one of the spec states), ``key`` (0 when unkeyed), ``lane``
    ((partition, shard)), ``seq``, ``lease``, ``fresh``, ``done_lease`` and
    optionally ``ended`` (derived from status and lease when absent);
    ``lanes`` maps each lane to ``(lane_next, claim_head)``; ``holding`` maps
    worker number to the attempt it holds.  Jobs not yet enqueued may be
    omitted from the end of the list.
    """
    n = constants.num_jobs
    rows = list(jobs) + [{"status": UNBORN}] * (n - len(jobs))
    if len(rows) != n:
        raise ValueError(f"expected at most {n} job rows, got {len(jobs)}")
    born = sum(1 for row in rows if row["status"] != UNBORN)

    def column(name: str, default: Any) -> tuple:
        return tuple(row.get(name, default) if row["status"] != UNBORN else default
                     for row in rows)

    holding = holding or {}
    # `ended` is history the database does not keep; in every behaviour of
    # the correct design it is the lease minus one while running, else the
    # lease.  A row may give it explicitly.
    ended = tuple(
        0 if row["status"] == UNBORN
        else row.get("ended", row.get("lease", 0) - (1 if row["status"] == RUNNING else 0))
        for row in rows
    )
    return LifecycleState(
        next_id=born + 1,
        status=tuple(row["status"] for row in rows),
        key=column("key", 0),
        lane=tuple(tuple(x) for x in column("lane", NO_LANE)),
        seq=column("seq", 0),
        lease=column("lease", 0),
        fresh=column("fresh", False),
        done_lease=column("done_lease", 0),
        ended=ended,
        lane_next=tuple(lanes.get(lane, (1, 0))[0] for lane in constants.lanes),
        claim_head=tuple(lanes.get(lane, (1, 0))[1] for lane in constants.lanes),
        holding=tuple(holding.get(w, IDLE) for w in constants.workers),
    )
