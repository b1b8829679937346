"""Python mirror of ``specs/PartitionedQueueLifecycle.tla``.

Each spec action is a function ``action(c, state, *params) -> state | None``
(None: not enabled); each invariant is a predicate ``invariant(c, state)``.
States are :class:`LifecycleState` values whose fields are the spec's
variables, so the explorer's distinct-state count equals TLC's.

Beyond exhaustive exploration, :func:`violated_invariants` evaluates every
invariant on an abstract state built from database rows; recorded runs are
replayed and rows turned into states by :mod:`verification.mirrors.lifecycle_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Fairness, LeadsTo, Model, Transition

UNBORN = "unborn"
READY = "ready"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
TERMINAL = frozenset({COMPLETED, FAILED})
STATES = frozenset({UNBORN, READY, RUNNING, COMPLETED, FAILED})
# Database job states that have a spec counterpart (see specs/MAPPING.md);
# `retryable` rows are requeued by promotion before they are compared.
SPEC_STATUS_OF_DB = {
    "available": READY,
    "running": RUNNING,
    "completed": COMPLETED,
    "failed": FAILED,
}
NO_LANE = (-1, -1)
IDLE = (0, 0)

Lane = tuple[int, int]  # (partition, shard)
Attempt = tuple[int, int]  # (job id, run lease); IDLE when none


class LifecycleState(NamedTuple):
    """The spec's variables; per-job tuples are indexed by job id - 1."""

    next_id: int
    status: tuple[str, ...]
    key: tuple[int, ...]
    lane: tuple[Lane, ...]
    seq: tuple[int, ...]
    lease: tuple[int, ...]
    fresh: tuple[bool, ...]
    done_lease: tuple[int, ...]
    ended: tuple[int, ...]  # highest run lease whose attempt has ended
    lane_next: tuple[int, ...]  # indexed like LifecycleConstants.lanes
    claim_head: tuple[int, ...]  # indexed like LifecycleConstants.lanes
    holding: tuple[Attempt, ...]  # indexed by worker - 1


@dataclass(frozen=True)
class LifecycleConstants:
    num_jobs: int
    num_partitions: int
    num_shards: int
    num_keys: int
    num_workers: int
    max_attempts: int
    guarded_finalize: bool = True
    cursor_claim: bool = True
    # Broken designs of specs/PartitionedQueueLifecycleBroken.tla, switched on
    # by the cfg's definition overrides (see OVERRIDES).
    claim_running: bool = False
    requeue_no_bump: bool = False
    requeue_rerouted: bool = False
    finalize_any_row: bool = False
    retry_past_max: bool = False
    lanes: tuple[Lane, ...] = field(init=False)
    jobs: range = field(init=False)
    workers: range = field(init=False)
    keys: range = field(init=False)

    def __post_init__(self) -> None:
        if min(self.num_jobs, self.num_partitions, self.num_shards,
               self.num_workers, self.max_attempts) < 1 or self.num_keys < 0:
            raise ValueError("lifecycle constants violate the spec's ASSUME")
        lanes = tuple((p, s) for p in range(self.num_partitions)
                      for s in range(self.num_shards))
        # Frozen dataclass: derived sets are computed once (spec: Lanes, Jobs...).
        object.__setattr__(self, "lanes", lanes)
        object.__setattr__(self, "jobs", range(1, self.num_jobs + 1))
        object.__setattr__(self, "workers", range(1, self.num_workers + 1))
        object.__setattr__(self, "keys", range(1, self.num_keys + 1))

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "LifecycleConstants":
        c = config.constants
        on = switches(config, OVERRIDES)
        return cls(
            num_jobs=int(c["NumJobs"]),
            num_partitions=int(c["NumPartitions"]),
            num_shards=int(c["NumShards"]),
            num_keys=int(c["NumKeys"]),
            num_workers=int(c["NumWorkers"]),
            max_attempts=int(c["MaxAttempts"]),
            guarded_finalize=bool(c["GuardedFinalize"]),
            cursor_claim=bool(c["CursorClaim"]),
            claim_running="claim_running" in on,
            requeue_no_bump="requeue_no_bump" in on,
            requeue_rerouted="requeue_rerouted" in on,
            finalize_any_row="finalize_any_row" in on,
            retry_past_max="retry_past_max" in on,
        )

    def lane_index(self, lane: Lane) -> int:
        return lane[0] * self.num_shards + lane[1]


OVERRIDES = {
    ("CanClaim", "CanClaimRunning"): "claim_running",
    ("Requeue", "RequeueNoBump"): "requeue_no_bump",
    ("Requeue", "RequeueRerouted"): "requeue_rerouted",
    ("FinalizeMatches", "FinalizeMatchesAnyRow"): "finalize_any_row",
    ("EndAttemptFailed", "EndAttemptFailedPastMax"): "retry_past_max",
}


def key_lane(c: LifecycleConstants, k: int) -> Lane:
    """spec: KeyLane(k)."""
    return ((k - 1) % c.num_partitions, ((k - 1) // c.num_partitions) % c.num_shards)


def _put(values: tuple, index: int, value: Any) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


_FIELD = {name: i for i, name in enumerate(LifecycleState._fields)}


def _set(s: LifecycleState, **changes: Any) -> LifecycleState:
    # NamedTuple._replace is slow; the explorer calls this on every transition.
    values = list(s)
    for name, value in changes.items():
        values[_FIELD[name]] = value
    return tuple.__new__(LifecycleState, values)


def initial_state(c: LifecycleConstants) -> LifecycleState:
    """spec: Init."""
    n, lanes = c.num_jobs, len(c.lanes)
    return LifecycleState(
        next_id=1,
        status=(UNBORN,) * n,
        key=(0,) * n,
        lane=(NO_LANE,) * n,
        seq=(0,) * n,
        lease=(0,) * n,
        fresh=(False,) * n,
        done_lease=(0,) * n,
        ended=(0,) * n,
        lane_next=(1,) * lanes,
        claim_head=(0,) * lanes,
        holding=(IDLE,) * c.num_workers,
    )


# --- helpers -------------------------------------------------------------


def current(s: LifecycleState, j: int, r: int) -> bool:
    """spec: Current(j, r) -- the run-lease guard."""
    return s.status[j - 1] == RUNNING and s.lease[j - 1] == r


def finalize_matches(c: LifecycleConstants, s: LifecycleState, j: int, r: int) -> bool:
    """spec: FinalizeMatches(j, r) (FinalizeMatchesAnyRow when overridden)."""
    if c.finalize_any_row:
        return True
    if c.guarded_finalize:
        return current(s, j, r)
    return s.status[j - 1] == RUNNING


def _requeue(c: LifecycleConstants, s: LifecycleState, j: int) -> LifecycleState:
    """spec: Requeue(j) (RequeueNoBump / RequeueRerouted when overridden)."""
    lane = s.lane[j - 1]
    if c.requeue_rerouted:
        lane = other_lane(c, lane)
    li = c.lane_index(lane)
    bump = 0 if c.requeue_no_bump else 1
    return _set(s,
        status=_put(s.status, j - 1, READY),
        lane=_put(s.lane, j - 1, lane),
        seq=_put(s.seq, j - 1, s.lane_next[li]),
        lane_next=_put(s.lane_next, li, s.lane_next[li] + bump),
    )


def other_lane(c: LifecycleConstants, lane: Lane) -> Lane:
    """spec (PartitionedQueueLifecycleBroken): OtherLane(l)."""
    return ((lane[0] + 1) % c.num_partitions, lane[1])


def can_claim(c: LifecycleConstants, s: LifecycleState, j: int) -> bool:
    """spec: CanClaim(j) (CanClaimRunning(j) when overridden)."""
    if c.claim_running and s.status[j - 1] == RUNNING:
        return True
    if s.status[j - 1] != READY:
        return False
    li = c.lane_index(s.lane[j - 1])
    return not c.cursor_claim or s.seq[j - 1] == s.claim_head[li] + 1


def _end_lease(s: LifecycleState, j: int, r: int) -> LifecycleState:
    """spec: EndLease(j, r)."""
    return _set(s, ended=_put(s.ended, j - 1, max(s.ended[j - 1], r)))


def _end_attempt_failed(
    c: LifecycleConstants, s: LifecycleState, j: int, r: int
) -> LifecycleState:
    """spec: EndAttemptFailed(j, r) (EndAttemptFailedPastMax: retry at <=)."""
    if s.lease[j - 1] < c.max_attempts + c.retry_past_max:
        return _requeue(c, s, j)
    return _set(s, 
        status=_put(s.status, j - 1, FAILED),
        done_lease=_put(s.done_lease, j - 1, r),
    )


# --- actions -------------------------------------------------------------


def _append_job(
    c: LifecycleConstants, s: LifecycleState, k: int, lane: Lane
) -> LifecycleState | None:
    """spec: AppendJob(k, l)."""
    if s.next_id > c.num_jobs:
        return None
    j = s.next_id
    li = c.lane_index(lane)
    return _set(s, 
        status=_put(s.status, j - 1, READY),
        key=_put(s.key, j - 1, k),
        lane=_put(s.lane, j - 1, lane),
        seq=_put(s.seq, j - 1, s.lane_next[li]),
        lane_next=_put(s.lane_next, li, s.lane_next[li] + 1),
        next_id=j + 1,
    )


def enqueue_keyed(c: LifecycleConstants, s: LifecycleState, k: int) -> LifecycleState | None:
    """spec: EnqueueKeyed(k)."""
    if k not in c.keys:
        return None
    return _append_job(c, s, k, key_lane(c, k))


def enqueue_unkeyed(
    c: LifecycleConstants, s: LifecycleState, lane: Lane
) -> LifecycleState | None:
    """spec: EnqueueUnkeyed(l)."""
    lane = tuple(lane)  # type: ignore[assignment]
    if lane not in c.lanes:
        return None
    return _append_job(c, s, 0, lane)


def claim(c: LifecycleConstants, s: LifecycleState, w: int, j: int) -> LifecycleState | None:
    """spec: Claim(w, j)."""
    if w not in c.workers or j not in c.jobs:
        return None
    if s.holding[w - 1] != IDLE or not can_claim(c, s, j):
        return None
    li = c.lane_index(s.lane[j - 1])
    new_lease = s.lease[j - 1] + 1
    return _set(s, 
        status=_put(s.status, j - 1, RUNNING),
        lease=_put(s.lease, j - 1, new_lease),
        fresh=_put(s.fresh, j - 1, True),
        holding=_put(s.holding, w - 1, (j, new_lease)),
        claim_head=_put(s.claim_head, li, max(s.claim_head[li], s.seq[j - 1])),
    )


def heartbeat(c: LifecycleConstants, s: LifecycleState, w: int) -> LifecycleState | None:
    """spec: Heartbeat(w)."""
    if w not in c.workers or s.holding[w - 1] == IDLE:
        return None
    j, r = s.holding[w - 1]
    if not current(s, j, r) or s.fresh[j - 1]:
        return None
    return _set(s, fresh=_put(s.fresh, j - 1, True))


def complete(c: LifecycleConstants, s: LifecycleState, w: int) -> LifecycleState | None:
    """spec: Complete(w)."""
    if w not in c.workers or s.holding[w - 1] == IDLE:
        return None
    j, r = s.holding[w - 1]
    if not finalize_matches(c, s, j, r):
        return None
    return _set(_end_lease(s, j, r),
        status=_put(s.status, j - 1, COMPLETED),
        done_lease=_put(s.done_lease, j - 1, r),
        fresh=_put(s.fresh, j - 1, False),
        holding=_put(s.holding, w - 1, IDLE),
    )


def fail(c: LifecycleConstants, s: LifecycleState, w: int) -> LifecycleState | None:
    """spec: Fail(w) -- retry in the job's own lane, or discard when exhausted."""
    if w not in c.workers or s.holding[w - 1] == IDLE:
        return None
    j, r = s.holding[w - 1]
    if not finalize_matches(c, s, j, r):
        return None
    after = _end_lease(_end_attempt_failed(c, s, j, r), j, r)
    return _set(after,
        fresh=_put(after.fresh, j - 1, False),
        holding=_put(after.holding, w - 1, IDLE),
    )


def drop_stale(c: LifecycleConstants, s: LifecycleState, w: int) -> LifecycleState | None:
    """spec: DropStale(w)."""
    if w not in c.workers or s.holding[w - 1] == IDLE:
        return None
    j, r = s.holding[w - 1]
    if finalize_matches(c, s, j, r):
        return None
    return _set(s, holding=_put(s.holding, w - 1, IDLE))


def crash(c: LifecycleConstants, s: LifecycleState, w: int) -> LifecycleState | None:
    """spec: Crash(w)."""
    if w not in c.workers or s.holding[w - 1] == IDLE:
        return None
    return _set(s, holding=_put(s.holding, w - 1, IDLE))


def expire(c: LifecycleConstants, s: LifecycleState, j: int) -> LifecycleState | None:
    """spec: Expire(j)."""
    if j not in c.jobs or s.status[j - 1] != RUNNING or not s.fresh[j - 1]:
        return None
    return _set(s, fresh=_put(s.fresh, j - 1, False))


def rescue(c: LifecycleConstants, s: LifecycleState, j: int) -> LifecycleState | None:
    """spec: Rescue(j)."""
    if j not in c.jobs or s.status[j - 1] != RUNNING or s.fresh[j - 1]:
        return None
    return _end_lease(_end_attempt_failed(c, s, j, s.lease[j - 1]), j, s.lease[j - 1])


ACTIONS: dict[str, Callable[..., LifecycleState | None]] = {
    "EnqueueKeyed": enqueue_keyed,
    "EnqueueUnkeyed": enqueue_unkeyed,
    "Claim": claim,
    "Heartbeat": heartbeat,
    "Complete": complete,
    "Fail": fail,
    "DropStale": drop_stale,
    "Crash": crash,
    "Expire": expire,
    "Rescue": rescue,
}

# Parameter names, in spec order, for replaying steps given as mappings.
ACTION_PARAMS: dict[str, tuple[str, ...]] = {
    "EnqueueKeyed": ("k",),
    "EnqueueUnkeyed": ("l",),
    "Claim": ("w", "j"),
    "Heartbeat": ("w",),
    "Complete": ("w",),
    "Fail": ("w",),
    "DropStale": ("w",),
    "Crash": ("w",),
    "Expire": ("j",),
    "Rescue": ("j",),
}


def successors(c: LifecycleConstants, s: LifecycleState) -> Iterator[Transition]:
    """spec: Next."""
    for k in c.keys:
        nxt = enqueue_keyed(c, s, k)
        if nxt is not None:
            yield ("EnqueueKeyed", (k,)), nxt
    for lane in c.lanes:
        nxt = enqueue_unkeyed(c, s, lane)
        if nxt is not None:
            yield ("EnqueueUnkeyed", (lane,)), nxt
    for w in c.workers:
        for j in c.jobs:
            nxt = claim(c, s, w, j)
            if nxt is not None:
                yield ("Claim", (w, j)), nxt
    for w in c.workers:
        for name in ("Heartbeat", "Complete", "Fail", "DropStale", "Crash"):
            nxt = ACTIONS[name](c, s, w)
            if nxt is not None:
                yield (name, (w,)), nxt
    for j in c.jobs:
        for name in ("Expire", "Rescue"):
            nxt = ACTIONS[name](c, s, j)
            if nxt is not None:
                yield (name, (j,)), nxt


# --- invariants ----------------------------------------------------------


def type_ok(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: TypeOK."""
    n = c.num_jobs
    if not 1 <= s.next_id <= n + 1:
        return False
    if any(len(v) != n for v in (s.status, s.key, s.lane, s.seq, s.lease,
                                 s.fresh, s.done_lease, s.ended)):
        return False
    if any(x not in STATES for x in s.status):
        return False
    if any(not 0 <= k <= c.num_keys for k in s.key):
        return False
    if any(lane != NO_LANE and lane not in c.lanes for lane in s.lane):
        return False
    if any(q < 0 for q in s.seq):
        return False
    if any(not 0 <= r <= c.max_attempts for r in s.lease + s.done_lease + s.ended):
        return False
    if len(s.lane_next) != len(c.lanes) or any(q < 1 for q in s.lane_next):
        return False
    if len(s.claim_head) != len(c.lanes) or any(q < 0 for q in s.claim_head):
        return False
    if len(s.holding) != c.num_workers:
        return False
    return all(
        h == IDLE or (h[0] in c.jobs and 1 <= h[1] <= c.max_attempts)
        for h in s.holding
    )


def no_job_lost(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: NoJobLost."""
    for j in c.jobs:
        if (j < s.next_id) != (s.status[j - 1] != UNBORN):
            return False
        if s.status[j - 1] != UNBORN and s.lane[j - 1] not in c.lanes:
            return False
    ready_slots = [
        (s.lane[j - 1], s.seq[j - 1]) for j in c.jobs if s.status[j - 1] == READY
    ]
    if len(ready_slots) != len(set(ready_slots)):
        return False
    occupied = set(ready_slots)
    for li, lane in enumerate(c.lanes):
        for n in range(s.claim_head[li] + 1, s.lane_next[li]):
            if (lane, n) not in occupied:
                return False
    return True


def no_two_live_leases(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: NoTwoLiveLeases -- every run lease but the newest has ended."""
    return all(lease <= ended + 1 for lease, ended in zip(s.lease, s.ended))


def stale_attempt_never_finalizes(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: StaleAttemptNeverFinalizes."""
    return all(
        s.done_lease[j - 1] == s.lease[j - 1]
        for j in c.jobs
        if s.status[j - 1] in TERMINAL
    )


def claim_order_fifo(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: ClaimOrderFifo."""
    return all(
        s.seq[j - 1] > s.claim_head[c.lane_index(s.lane[j - 1])]
        for j in c.jobs
        if s.status[j - 1] == READY
    )


def keyed_jobs_stay_in_key_lane(c: LifecycleConstants, s: LifecycleState) -> bool:
    """spec: KeyedJobsStayInKeyLane."""
    return all(
        s.lane[j - 1] == key_lane(c, s.key[j - 1])
        for j in c.jobs
        if s.status[j - 1] != UNBORN and s.key[j - 1] != 0
    )


def terminal_is_final(c: LifecycleConstants, s: LifecycleState, t: LifecycleState) -> bool:
    """spec: TerminalIsFinal (an action property, checked on every step)."""
    return all(
        t.status[j - 1] == s.status[j - 1] and t.done_lease[j - 1] == s.done_lease[j - 1]
        for j in c.jobs
        if s.status[j - 1] in TERMINAL
    )


def every_job_terminates(c: LifecycleConstants) -> LeadsTo:
    """spec: EveryJobTerminates == \\A j : status[j] # unborn ~> terminal."""
    return LeadsTo(
        instances=tuple(c.jobs),
        premise=lambda j, s: s.status[j - 1] != UNBORN,
        goal=lambda j, s: s.status[j - 1] in TERMINAL,
    )


INVARIANTS: dict[str, Callable[[LifecycleConstants, LifecycleState], bool]] = {
    "TypeOK": type_ok,
    "NoJobLost": no_job_lost,
    "NoTwoLiveLeases": no_two_live_leases,
    "StaleAttemptNeverFinalizes": stale_attempt_never_finalizes,
    "ClaimOrderFifo": claim_order_fifo,
    "KeyedJobsStayInKeyLane": keyed_jobs_stay_in_key_lane,
}
ACTION_PROPERTIES = {"TerminalIsFinal": terminal_is_final}
LIVENESS = {"EveryJobTerminates": every_job_terminates}

# spec: ClaimSomething, FinishSomething, TimeoutSomething and the two specs.
FAIRNESS = {
    "ClaimSomething": frozenset({"Claim"}),
    "FinishSomething": frozenset({"Complete", "DropStale"}),
    "TimeoutSomething": frozenset({"Expire", "Rescue"}),
}
SPECIFICATIONS = {
    "Spec": ("ClaimSomething", "FinishSomething", "TimeoutSomething"),
    "SpecWithoutRescueFairness": ("ClaimSomething", "FinishSomething"),
}


def render(s: LifecycleState) -> str:
    jobs = []
    for i, st in enumerate(s.status):
        if st == UNBORN:
            continue
        jobs.append(
            f"j{i + 1}:{st} key={s.key[i]} lane={s.lane[i]} seq={s.seq[i]} "
            f"lease={s.lease[i]}{' fresh' if s.fresh[i] else ''}"
            f"{f' done@{s.done_lease[i]}' if s.done_lease[i] else ''}"
            f"{f' ended={s.ended[i]}' if s.ended[i] else ''}"
        )
    workers = " ".join(
        f"w{w + 1}:{'idle' if h == IDLE else f'<<{h[0]},{h[1]}>>'}"
        for w, h in enumerate(s.holding)
    )
    return (f"{'; '.join(jobs) or 'no jobs'} | laneNext={list(s.lane_next)} "
            f"claimHead={list(s.claim_head)} | {workers}")


def build_model(config: ModelConfig) -> Model:
    """The explorer's view of this spec under one cfg."""
    c = LifecycleConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"lifecycle mirror has no specification {config.specification!r}")
    fairness = tuple(
        Fairness(name, FAIRNESS[name]) for name in SPECIFICATIONS[config.specification]
    )
    return Model(
        name=f"PartitionedQueueLifecycle/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        action_properties={
            n: (lambda s, t, f=f: f(c, s, t)) for n, f in ACTION_PROPERTIES.items()
        },
        liveness={n: f(c) for n, f in LIVENESS.items()},
        fairness=fairness,
        render=render,
    )


# --- checking states built from database rows ---------------------------


def violated_invariants(
    c: LifecycleConstants,
    s: LifecycleState,
    names: Iterable[str] | None = None,
) -> list[str]:
    """Names of the invariants that do not hold in ``s`` (all by default)."""
    chosen = INVARIANTS if names is None else {n: INVARIANTS[n] for n in names}
    return [name for name, predicate in chosen.items() if not predicate(c, s)]
