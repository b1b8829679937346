"""Python mirror of ``specs/ContinuousLoad.tla`` (worker slots under continuous load).

Each spec action is ``action(c, state, *params) -> state | None`` (None: not
enabled); states are :class:`LoadState` values whose fields are the spec's
variables, so the explorer's distinct-state count equals TLC's. Per-partition
tuples are indexed by partition; ``held`` by the claimer's position in
:attr:`LoadConstants.claimers` (units, then claim loops, in order). A claim's
label carries the lane order its walk took, which is what the strong fairness
of ``ClaimFirst(c, p)`` looks at.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Callable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Fairness, LeadsTo, Model, Transition

HOT = 0


class LoadState(NamedTuple):
    avail: tuple[int, ...]
    running: tuple[int, ...]
    held: tuple[int, ...]
    watch: tuple[int, ...]


@dataclass(frozen=True)
class LoadConstants:
    num_partitions: int
    hot_room: int
    cold_room: int
    cap: int
    batch: int
    num_claimers: int
    shared: bool
    cap_slack: int = 0
    lane_order: str = "random"
    #: spec (ContinuousLoadBroken): Acquire <- AcquireAllFree
    no_batch_limit: bool = False

    def __post_init__(self) -> None:
        positive = (self.num_partitions, self.hot_room, self.cold_room, self.cap, self.batch, self.num_claimers)
        if min(positive) < 1 or self.cap_slack not in (0, 1):
            raise ValueError("continuous-load constants violate the spec's ASSUME")
        if self.lane_order not in ("random", "index", "mostwork"):
            raise ValueError(f"unknown LaneOrder {self.lane_order!r}")

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "LoadConstants":
        c = config.constants
        return cls(
            num_partitions=int(c["NumPartitions"]),
            hot_room=int(c["HotRoom"]),
            cold_room=int(c["ColdRoom"]),
            cap=int(c["Cap"]),
            batch=int(c["Batch"]),
            num_claimers=int(c["NumClaimers"]),
            shared=bool(c["Shared"]),
            cap_slack=int(c["CapSlack"]),
            lane_order=str(c["LaneOrder"]),
            no_batch_limit="no_batch_limit" in switches(config, {("Acquire", "AcquireAllFree"): "no_batch_limit"}),
        )

    @property
    def partitions(self) -> range:
        return range(self.num_partitions)

    @property
    def units(self) -> range:
        """spec: Units."""
        return range(1) if self.shared else self.partitions

    def lanes_of(self, u: int) -> range:
        """spec: LanesOf(u)."""
        return self.partitions if self.shared else range(u, u + 1)

    @property
    def claimers(self) -> tuple[tuple[int, int], ...]:
        """spec: Claimers = Units \\X 1..NumClaimers."""
        return tuple((u, k) for u in self.units for k in range(1, self.num_claimers + 1))

    @property
    def limit(self) -> int:
        return self.cap + self.cap_slack

    def room(self, p: int) -> int:
        return self.hot_room if p == HOT else self.cold_room


def initial_state(c: LoadConstants) -> LoadState:
    """spec: Init."""
    zeros = (0,) * c.num_partitions
    return LoadState(zeros, zeros, (0,) * len(c.claimers), zeros)


def _put(values: tuple, i: int, value: object) -> tuple:
    return values[:i] + (value,) + values[i + 1:]


def in_use(c: LoadConstants, s: LoadState, u: int) -> int:
    """spec: InUse(u) = Running(u) + Held(u)."""
    running = sum(s.running) if c.shared else s.running[u]
    held = sum(s.held[i] for i, (unit, _) in enumerate(c.claimers) if unit == u)
    return running + held


def enqueue(c: LoadConstants, s: LoadState, p: int, watched: bool) -> LoadState | None:
    if s.avail[p] >= c.room(p) or (watched and s.watch[p] != 0):
        return None
    watch = _put(s.watch, p, s.avail[p] + 1) if watched else s.watch
    return s._replace(avail=_put(s.avail, p, s.avail[p] + 1), watch=watch)


def acquire(c: LoadConstants, s: LoadState, i: int) -> LoadState | None:
    """spec: Acquire(c) for the i-th claimer (AcquireAllFree: no batch limit)."""
    unit = c.claimers[i][0]
    free = c.limit - in_use(c, s, unit)
    granted = free if c.no_batch_limit else min(c.batch, free)
    if s.held[i] != 0 or granted <= 0:
        return None
    return s._replace(held=_put(s.held, i, granted))


def ordered(c: LoadConstants, s: LoadState, order: tuple[int, ...]) -> bool:
    """spec: Ordered(o)."""
    pairs = list(zip(order, order[1:]))
    if c.lane_order == "index":
        return all(a < b for a, b in pairs)
    if c.lane_order == "mostwork":
        return all(s.avail[a] >= s.avail[b] for a, b in pairs)
    return True


def lane_orders(c: LoadConstants, s: LoadState, unit: int) -> list[tuple[int, ...]]:
    """spec: LaneOrders(u): orders of the lanes with work the statement may walk."""
    waiting = [p for p in c.lanes_of(unit) if s.avail[p] > 0]
    return [o for o in permutations(waiting) if ordered(c, s, o)]


def walk(c: LoadConstants, s: LoadState, order: tuple[int, ...], granted: int) -> list[int]:
    """spec: Walk(o, g)."""
    taken = [0] * c.num_partitions
    for p in order:
        taken[p] = min(s.avail[p], granted - sum(taken))
    return taken


def claim_with(c: LoadConstants, s: LoadState, i: int, order: tuple[int, ...]) -> LoadState | None:
    """spec: ClaimWith(c, o) for the i-th claimer."""
    if s.held[i] <= 0:
        return None
    taken = walk(c, s, order, s.held[i])
    return LoadState(
        avail=tuple(a - t for a, t in zip(s.avail, taken)),
        running=tuple(r + t for r, t in zip(s.running, taken)),
        held=_put(s.held, i, 0),
        watch=tuple(0 if w <= t else w - t for w, t in zip(s.watch, taken)),
    )


def finish(c: LoadConstants, s: LoadState, p: int) -> LoadState | None:
    if s.running[p] <= 0:
        return None
    return s._replace(running=_put(s.running, p, s.running[p] - 1))


def successors(c: LoadConstants, s: LoadState) -> Iterator[Transition]:
    """spec: Next."""
    for p in c.partitions:
        for watched in (False, True):
            nxt = enqueue(c, s, p, watched)
            if nxt is not None:
                yield ("Enqueue", (p, watched)), nxt
    for i, claimer in enumerate(c.claimers):
        nxt = acquire(c, s, i)
        if nxt is not None:
            yield ("Acquire", (claimer,)), nxt
    for i, claimer in enumerate(c.claimers):
        if s.held[i] > 0:
            for order in lane_orders(c, s, claimer[0]):
                nxt = claim_with(c, s, i, order)
                assert nxt is not None
                yield ("Claim", (claimer, order)), nxt
    for p in c.partitions:
        nxt = finish(c, s, p)
        if nxt is not None:
            yield ("Finish", (p,)), nxt


def type_ok(c: LoadConstants, s: LoadState) -> bool:
    top = max(c.hot_room, c.cold_room)
    return (
        all(0 <= a <= top for a in s.avail)
        and all(0 <= r <= c.limit for r in s.running)
        and all(0 <= h <= c.batch for h in s.held)
        and all(0 <= w <= min(top, a) for w, a in zip(s.watch, s.avail))
    )


def partition_cap(c: LoadConstants, s: LoadState) -> bool:
    return c.shared or all(r <= c.cap for r in s.running)


def shared_cap(c: LoadConstants, s: LoadState) -> bool:
    return not c.shared or sum(s.running) <= c.cap


def every_job_claimed(c: LoadConstants) -> LeadsTo:
    """spec: \\A p : (watch[p] > 0) ~> (watch[p] = 0)."""
    return LeadsTo(
        instances=tuple(c.partitions),
        premise=lambda p, s: s.watch[p] > 0,
        goal=lambda p, s: s.watch[p] == 0,
    )


INVARIANTS: dict[str, Callable[[LoadConstants, LoadState], bool]] = {
    "TypeOK": type_ok,
    "PartitionCap": partition_cap,
    "SharedCap": shared_cap,
}
LIVENESS = {"EveryJobClaimed": every_job_claimed}


def loop_fairness(c: LoadConstants) -> list[Fairness]:
    """spec: LoopFairness -- WF per partition's Finish, per claimer's Acquire and Claim."""
    out = [Fairness(f"Finish({p})", frozenset({"Finish"}), where=lambda label, p=p: label[1][0] == p)
           for p in c.partitions]
    for claimer in c.claimers:
        for action in ("Acquire", "Claim"):
            out.append(Fairness(f"{action}({claimer})", frozenset({action}),
                                where=lambda label, claimer=claimer: label[1][0] == claimer))
    return out


def lane_order_fairness(c: LoadConstants) -> list[Fairness]:
    """spec: \\A c, p : SF_vars(ClaimFirst(c, p))."""
    return [
        Fairness(f"ClaimFirst({claimer}, {p})", frozenset({"Claim"}), strong=True,
                 where=lambda label, claimer=claimer, p=p: label[1][0] == claimer and label[1][1][:1] == (p,))
        for claimer in c.claimers for p in c.partitions
    ]


SPECIFICATIONS = {
    "Spec": lambda c: loop_fairness(c) + lane_order_fairness(c),
    "SpecWeak": loop_fairness,
}


def render(s: LoadState) -> str:
    return f"avail={list(s.avail)} running={list(s.running)} held={list(s.held)} watch={list(s.watch)}"


def build_model(config: ModelConfig) -> Model:
    c = LoadConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"continuous-load mirror has no specification {config.specification!r}")
    return Model(
        name=f"ContinuousLoad/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        liveness={n: f(c) for n, f in LIVENESS.items()},
        fairness=tuple(SPECIFICATIONS[config.specification](c)),
        render=render,
    )
