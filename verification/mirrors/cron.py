"""Python mirror of ``specs/Cron.tla`` (periodic jobs fired by several schedulers).

Each spec action is ``action(c, state, *params) -> state | None`` (None: not
enabled); states are :class:`CronState` values whose fields are the spec's
variables, so the explorer's distinct-state count equals TLC's. Per-scheduler
tuples are indexed by scheduler id - 1, per-tick ones by tick - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import LeadsTo, Model, Transition, spec_model

NO_ONE = 0


class CronState(NamedTuple):
    now: int
    alive: frozenset[int]
    crashes: int
    lease: int
    leader: tuple[bool, ...]
    cursor: tuple[int, ...]
    pending: tuple[int, ...]
    jobs: tuple[int, ...]
    recorded: frozenset[int]


@dataclass(frozen=True)
class CronConstants:
    num_schedulers: int
    max_tick: int
    max_crashes: int
    skew: int
    one_transaction: bool = True
    tick_keyed: bool = True
    lease_fenced: bool = True
    lease_expires: bool = True
    #: spec (CronBroken): Last <- NextAfterLast
    next_after_last: bool = False

    def __post_init__(self) -> None:
        if self.num_schedulers < 1 or self.max_tick < 1 or self.max_crashes < 0 or self.skew < 0:
            raise ValueError("cron constants violate the spec's ASSUME")

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "CronConstants":
        c = config.constants
        return cls(
            num_schedulers=int(c["NumSchedulers"]),
            max_tick=int(c["MaxTick"]),
            max_crashes=int(c["MaxCrashes"]),
            skew=int(c["Skew"]),
            one_transaction=bool(c["OneTransaction"]),
            tick_keyed=bool(c["TickKeyed"]),
            lease_fenced=bool(c["LeaseFenced"]),
            lease_expires=bool(c["LeaseExpires"]),
            next_after_last="next_after_last" in switches(config, {("Last", "NextAfterLast"): "next_after_last"}),
        )

    @property
    def schedulers(self) -> range:
        return range(1, self.num_schedulers + 1)

    @property
    def ticks(self) -> range:
        return range(1, self.max_tick + 1)


def initial_state(c: CronConstants) -> CronState:
    """spec: Init."""
    n = c.num_schedulers
    return CronState(0, frozenset(c.schedulers), 0, NO_ONE, (False,) * n, (0,) * n, (0,) * n,
                     (0,) * c.max_tick, frozenset())


def last(c: CronConstants, s: CronState) -> int:
    """spec: Last (NextAfterLast: one more)."""
    return max(s.recorded, default=0) + c.next_after_last


def _put(values: tuple, s_id: int, value: object) -> tuple:
    return values[: s_id - 1] + (value,) + values[s_id:]


def tick(c: CronConstants, s: CronState) -> CronState | None:
    if s.now >= c.max_tick:
        return None
    return s._replace(now=s.now + 1)


def acquire(c: CronConstants, s: CronState, i: int) -> CronState | None:
    if i not in s.alive or s.leader[i - 1]:
        return None
    if c.lease_fenced and s.lease not in (NO_ONE, i):
        return None
    return s._replace(lease=i, leader=_put(s.leader, i, True), cursor=_put(s.cursor, i, last(c, s)))


def expire(c: CronConstants, s: CronState) -> CronState | None:
    if not c.lease_expires or s.lease == NO_ONE or s.lease in s.alive:
        return None
    return s._replace(lease=NO_ONE)


def fire(c: CronConstants, s: CronState, i: int) -> CronState | None:
    t = s.cursor[i - 1] + 1
    if i not in s.alive or not s.leader[i - 1] or s.pending[i - 1] != 0:
        return None
    if t > c.max_tick or t > s.now + c.skew:
        return None
    if c.tick_keyed and t in s.recorded:
        return s._replace(cursor=_put(s.cursor, i, last(c, s)))
    jobs = _put(s.jobs, t, s.jobs[t - 1] + 1)
    if c.one_transaction:
        return s._replace(jobs=jobs, recorded=s.recorded | {t}, cursor=_put(s.cursor, i, t))
    return s._replace(jobs=jobs, pending=_put(s.pending, i, t))


def record(c: CronConstants, s: CronState, i: int) -> CronState | None:
    t = s.pending[i - 1]
    if i not in s.alive or t == 0:
        return None
    return s._replace(recorded=s.recorded | {t}, cursor=_put(s.cursor, i, t), pending=_put(s.pending, i, 0))


def crash(c: CronConstants, s: CronState, i: int) -> CronState | None:
    if i not in s.alive or s.crashes >= c.max_crashes:
        return None
    return s._replace(alive=s.alive - {i}, crashes=s.crashes + 1, leader=_put(s.leader, i, False),
                      cursor=_put(s.cursor, i, 0), pending=_put(s.pending, i, 0))


def recover(c: CronConstants, s: CronState, i: int) -> CronState | None:
    if i in s.alive:
        return None
    return s._replace(alive=s.alive | {i})


PER_SCHEDULER = {"Acquire": acquire, "Fire": fire, "Record": record, "Crash": crash, "Recover": recover}


def successors(c: CronConstants, s: CronState) -> Iterator[Transition]:
    """spec: Next."""
    nxt = tick(c, s)
    if nxt is not None:
        yield ("Tick", ()), nxt
    nxt = expire(c, s)
    if nxt is not None:
        yield ("Expire", ()), nxt
    for name, action in PER_SCHEDULER.items():
        for i in c.schedulers:
            nxt = action(c, s, i)
            if nxt is not None:
                yield (name, (i,)), nxt


def type_ok(c: CronConstants, s: CronState) -> bool:
    ticks = set(c.ticks)
    return (
        0 <= s.now <= c.max_tick
        and s.alive <= set(c.schedulers)
        and 0 <= s.crashes <= c.max_crashes
        and (s.lease == NO_ONE or s.lease in c.schedulers)
        and all(0 <= v <= c.max_tick for v in s.cursor + s.pending)
        and all(0 <= j <= 2 for j in s.jobs)
        and s.recorded <= ticks
    )


def no_tick_fired_twice(c: CronConstants, s: CronState) -> bool:
    return all(j <= 1 for j in s.jobs)


def every_due_tick_fired(c: CronConstants) -> LeadsTo:
    """spec: \\A t : (now >= t) ~> (jobs[t] >= 1)."""
    return LeadsTo(
        instances=tuple(c.ticks),
        premise=lambda t, s: s.now >= t,
        goal=lambda t, s: s.jobs[t - 1] >= 1,
    )


INVARIANTS: dict[str, Callable[[CronConstants, CronState], bool]] = {
    "TypeOK": type_ok,
    "NoTickFiredTwice": no_tick_fired_twice,
}
LIVENESS = {"EveryDueTickFired": every_due_tick_fired}
FAIRNESS = {
    "Tick": frozenset({"Tick"}),
    "Expire": frozenset({"Expire"}),
    "AcquireSome": frozenset({"Acquire"}),
    "FireSome": frozenset({"Fire"}),
    "RecordSome": frozenset({"Record"}),
}
SPECIFICATIONS = {"Spec": tuple(FAIRNESS)}


def render(s: CronState) -> str:
    return (f"now={s.now} alive={sorted(s.alive)} crashes={s.crashes} lease={s.lease} "
            f"leader={list(s.leader)} cursor={list(s.cursor)} pending={list(s.pending)} "
            f"jobs={list(s.jobs)} recorded={sorted(s.recorded)}")


def build_model(config: ModelConfig) -> Model:
    return spec_model('Cron', config, CronConstants.from_cfg(config), initial_state=initial_state,
                      successors=successors, invariants=INVARIANTS, liveness=LIVENESS,
                      fairness=FAIRNESS, specifications=SPECIFICATIONS, render=render)
