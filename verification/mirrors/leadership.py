"""Python mirror of ``specs/Leadership.tla`` (maintenance leadership as a lease row).

Each spec action is ``action(c, state, *params) -> state | None`` (None: not
enabled); states are :class:`LeadershipState` values whose fields are the
spec's variables, so the explorer's distinct-state count equals TLC's.
Per-worker tuples are indexed by worker id - 1, per-job ones by job id - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import LeadsTo, Model, Transition, spec_model

NO_ONE = 0
NO_BELIEF = -1
LIVE, FROZEN, RESUMED = "live", "frozen", "resumed"
IDLE, GRANTED, MAINT = "idle", "granted", "maint"
DUE, AVAILABLE, RUNNING, DONE = "due", "available", "running", "done"


class LeadershipState(NamedTuple):
    mode: tuple[str, ...]
    since: tuple[int, ...]
    pc: tuple[str, ...]
    started: tuple[int, ...]
    holder: int
    left: int
    status: tuple[str, ...]
    owner: tuple[int, ...]
    waited: int


@dataclass(frozen=True)
class LeadershipConstants:
    num_workers: int
    num_jobs: int
    lease: int
    lease_expires: bool = True
    holder_guard: bool = True
    belief_from_start: bool = True
    #: spec (LeadershipBroken): Acquire <- AcquireExtendsExpiry
    renew_from_expiry: bool = False

    def __post_init__(self) -> None:
        if self.num_workers < 2 or self.num_jobs < 1 or self.lease < 2:
            raise ValueError("leadership constants violate the spec's ASSUME")

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "LeadershipConstants":
        c = config.constants
        return cls(
            num_workers=int(c["NumWorkers"]),
            num_jobs=int(c["NumJobs"]),
            lease=int(c["Lease"]),
            lease_expires=bool(c["LeaseExpires"]),
            holder_guard=bool(c["HolderGuard"]),
            belief_from_start=bool(c["BeliefFromStart"]),
            renew_from_expiry="renew_from_expiry" in switches(
                config, {("Acquire", "AcquireExtendsExpiry"): "renew_from_expiry"}),
        )

    @property
    def workers(self) -> range:
        return range(1, self.num_workers + 1)

    @property
    def jobs(self) -> range:
        return range(1, self.num_jobs + 1)


def initial_state(c: LeadershipConstants) -> LeadershipState:
    """spec: Init."""
    n, m = c.num_workers, c.num_jobs
    return LeadershipState((LIVE,) * n, (NO_BELIEF,) * n, (IDLE,) * n, (0,) * n, NO_ONE, 0,
                           (DUE,) * m, (NO_ONE,) * m, 0)


def _put(values: tuple, index: int, value: object) -> tuple:
    return values[: index - 1] + (value,) + values[index:]


def live(s: LeadershipState, w: int) -> bool:
    return s.mode[w - 1] != FROZEN


def held(c: LeadershipConstants, s: LeadershipState, w: int) -> bool:
    """spec: Held(w) -- LeaderLease.held()."""
    return s.since[w - 1] != NO_BELIEF and s.since[w - 1] < c.lease


def renew_due(s: LeadershipState, w: int) -> bool:
    return s.since[w - 1] == NO_BELIEF or s.since[w - 1] >= 1


def grants(c: LeadershipConstants, s: LeadershipState, w: int) -> bool:
    """spec: Grants(w) -- what acquire_leader_lease's ON CONFLICT ... WHERE lets through."""
    return not c.holder_guard or s.holder in (NO_ONE, w) or s.left == 0


def stale(s: LeadershipState, j: int) -> bool:
    return s.status[j - 1] == RUNNING and s.mode[s.owner[j - 1] - 1] == FROZEN


def work(c: LeadershipConstants, s: LeadershipState) -> bool:
    return any(stale(s, j) or s.status[j - 1] == DUE for j in c.jobs)


def observe(c: LeadershipConstants, s: LeadershipState) -> LeadershipState:
    """spec: Observe, applied to the successor of a non-tick step."""
    return s if work(c, s) else s._replace(waited=0)


def urgent(c: LeadershipConstants, s: LeadershipState, w: int) -> bool:
    if not live(s, w):
        return False
    if s.pc[w - 1] != IDLE:
        return True
    if held(c, s, w):
        return work(c, s)
    return grants(c, s, w)


def _age(c: LeadershipConstants, a: int) -> int:
    return NO_BELIEF if a == NO_BELIEF else min(a + 1, c.lease)


def tick(c: LeadershipConstants, s: LeadershipState) -> LeadershipState | None:
    if any(urgent(c, s, w) for w in c.workers):
        return None
    frozen_holder = s.holder != NO_ONE and s.mode[s.holder - 1] == FROZEN
    left = s.left if (not c.lease_expires and frozen_holder) else max(s.left - 1, 0)
    return s._replace(
        since=tuple(_age(c, a) for a in s.since),
        started=tuple(min(a + 1, c.lease) if p == GRANTED else 0 for a, p in zip(s.started, s.pc)),
        left=left,
        waited=min(s.waited + 1, c.lease + 1) if work(c, s) else 0,
    )


def acquire(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if not live(s, w) or s.pc[w - 1] != IDLE or not renew_due(s, w):
        return None
    if grants(c, s, w):
        left = s.left + c.lease if c.renew_from_expiry else c.lease  # AcquireExtendsExpiry
        return s._replace(holder=w, left=left, pc=_put(s.pc, w, GRANTED), started=_put(s.started, w, 0),
                          waited=s.waited if s.holder == w else 0)
    return s._replace(since=_put(s.since, w, NO_BELIEF))


def reply(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if not live(s, w) or s.pc[w - 1] != GRANTED:
        return None
    belief = s.started[w - 1] if c.belief_from_start else 0
    return s._replace(since=_put(s.since, w, belief), pc=_put(s.pc, w, IDLE), started=_put(s.started, w, 0))


def start_maintenance(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if not live(s, w) or s.pc[w - 1] != IDLE or not held(c, s, w) or not work(c, s):
        return None
    return s._replace(pc=_put(s.pc, w, MAINT))


def maintain(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if not live(s, w) or s.pc[w - 1] != MAINT:
        return None
    status = tuple(DUE if stale(s, j) else AVAILABLE if s.status[j - 1] == DUE else s.status[j - 1]
                   for j in c.jobs)
    owner = tuple(NO_ONE if stale(s, j) else s.owner[j - 1] for j in c.jobs)
    return observe(c, s._replace(status=status, owner=owner, pc=_put(s.pc, w, IDLE)))


def claim(c: LeadershipConstants, s: LeadershipState, w: int, j: int) -> LeadershipState | None:
    if not live(s, w) or s.status[j - 1] != AVAILABLE:
        return None
    return s._replace(status=_put(s.status, j, RUNNING), owner=_put(s.owner, j, w))


def complete(c: LeadershipConstants, s: LeadershipState, w: int, j: int) -> LeadershipState | None:
    if not live(s, w) or s.status[j - 1] != RUNNING or s.owner[j - 1] != w:
        return None
    return observe(c, s._replace(status=_put(s.status, j, DONE), owner=_put(s.owner, j, NO_ONE)))


def freeze(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if s.mode[w - 1] != LIVE or sum(m == FROZEN for m in s.mode) >= c.num_workers - 1:
        return None
    return observe(c, s._replace(mode=_put(s.mode, w, FROZEN)))


def resume(c: LeadershipConstants, s: LeadershipState, w: int) -> LeadershipState | None:
    if s.mode[w - 1] != FROZEN:
        return None
    return observe(c, s._replace(mode=_put(s.mode, w, RESUMED)))


PER_WORKER = {"Acquire": acquire, "Reply": reply, "StartMaintenance": start_maintenance,
              "Maintain": maintain, "Freeze": freeze, "Resume": resume}
PER_WORKER_JOB = {"Claim": claim, "Complete": complete}


def successors(c: LeadershipConstants, s: LeadershipState) -> Iterator[Transition]:
    """spec: Next."""
    nxt = tick(c, s)
    if nxt is not None:
        yield ("Tick", ()), nxt
    for name, action in PER_WORKER.items():
        for w in c.workers:
            nxt = action(c, s, w)
            if nxt is not None:
                yield (name, (w,)), nxt
    for name, action in PER_WORKER_JOB.items():
        for w in c.workers:
            for j in c.jobs:
                nxt = action(c, s, w, j)
                if nxt is not None:
                    yield (name, (w, j)), nxt


def type_ok(c: LeadershipConstants, s: LeadershipState) -> bool:
    ages = range(0, c.lease + 1)
    return (
        all(m in (LIVE, FROZEN, RESUMED) for m in s.mode)
        and all(a == NO_BELIEF or a in ages for a in s.since)
        and all(p in (IDLE, GRANTED, MAINT) for p in s.pc)
        and all(a in ages for a in s.started)
        and (s.holder == NO_ONE or s.holder in c.workers)
        and s.left in ages
        and all(x in (DUE, AVAILABLE, RUNNING, DONE) for x in s.status)
        and all(o == NO_ONE or o in c.workers for o in s.owner)
        and 0 <= s.waited <= c.lease + 1
    )


def one_believer(c: LeadershipConstants, s: LeadershipState) -> bool:
    return sum(held(c, s, w) for w in c.workers) <= 1


def believer_holds_live_lease(c: LeadershipConstants, s: LeadershipState) -> bool:
    return all(s.holder == w and s.left > 0 for w in c.workers if held(c, s, w))


def maintenance_within_lease(c: LeadershipConstants, s: LeadershipState) -> bool:
    return s.waited <= c.lease


def every_job_terminates(c: LeadershipConstants) -> LeadsTo:
    """spec: \\A j : TRUE ~> (status[j] = "done")."""
    return LeadsTo(
        instances=tuple(c.jobs),
        premise=lambda j, s: True,
        goal=lambda j, s: s.status[j - 1] == DONE,
    )


INVARIANTS: dict[str, Callable[[LeadershipConstants, LeadershipState], bool]] = {
    "TypeOK": type_ok,
    "OneBeliever": one_believer,
    "BelieverHoldsLiveLease": believer_holds_live_lease,
    "MaintenanceWithinLease": maintenance_within_lease,
}
LIVENESS = {"EveryJobTerminates": every_job_terminates}
FAIRNESS = {
    "Tick": frozenset({"Tick"}),
    "AcquireSome": frozenset({"Acquire"}),
    "ReplySome": frozenset({"Reply"}),
    "StartMaintenanceSome": frozenset({"StartMaintenance"}),
    "MaintainSome": frozenset({"Maintain"}),
    "ClaimSome": frozenset({"Claim"}),
    "CompleteSome": frozenset({"Complete"}),
}
SPECIFICATIONS = {"Spec": tuple(FAIRNESS)}


def render(s: LeadershipState) -> str:
    return (f"mode={list(s.mode)} since={list(s.since)} pc={list(s.pc)} started={list(s.started)} "
            f"holder={s.holder} left={s.left} status={list(s.status)} owner={list(s.owner)} "
            f"waited={s.waited}")


def build_model(config: ModelConfig) -> Model:
    return spec_model('Leadership', config, LeadershipConstants.from_cfg(config), initial_state=initial_state,
                      successors=successors, invariants=INVARIANTS, liveness=LIVENESS,
                      fairness=FAIRNESS, specifications=SPECIFICATIONS, render=render)
