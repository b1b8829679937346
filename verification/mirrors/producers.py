"""Python mirror of ``specs/ConcurrentProducers.tla``.

A state is :class:`ProducersState`, one field per spec variable; per-producer
tuples are indexed by producer - 1, per-lane tuples by lane - 1.  The broken
designs of ``ConcurrentProducersBroken.tla`` are switched on by the cfg's
definition overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, permutations
from typing import Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Model, Transition

IDLE, LOCKING, WRITTEN = "idle", "locking", "written"
OVERRIDES = {
    ("HeadLockHeldToCommit", "EarlyRelease"): "early_release",
    ("LockOrders", "AnyLockOrder"): "any_lock_order",
    ("Reserve", "ReserveAfterBump"): "reserve_after_bump",
}


class ProducersState(NamedTuple):
    pc: tuple[str, ...]
    rounds: tuple[int, ...]
    order: tuple[tuple[int, ...], ...]
    held: tuple[frozenset[int], ...]
    resv: tuple[tuple[int, ...], ...]  # resv[p-1][l-1], 0 = none
    lane_next: tuple[int, ...]
    committed: tuple[frozenset[int], ...]
    claimed: tuple[frozenset[int], ...]
    claim_head: tuple[int, ...]


@dataclass(frozen=True)
class ProducersConstants:
    num_producers: int
    num_lanes: int
    rounds: int
    early_release: bool = False  # spec: HeadLockHeldToCommit <- EarlyRelease
    any_lock_order: bool = False  # spec: LockOrders <- AnyLockOrder
    reserve_after_bump: bool = False  # spec: Reserve <- ReserveAfterBump

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "ProducersConstants":
        c = config.constants
        on = switches(config, OVERRIDES)
        out = cls(int(c["NumProducers"]), int(c["NumLanes"]), int(c["Rounds"]),
                  "early_release" in on, "any_lock_order" in on, "reserve_after_bump" in on)
        if min(out.num_producers, out.num_lanes, out.rounds) < 1:
            raise ValueError("producer constants violate the spec's ASSUME")
        return out

    @property
    def producers(self) -> range:
        return range(1, self.num_producers + 1)

    @property
    def lanes(self) -> range:
        return range(1, self.num_lanes + 1)

    @property
    def max_seq(self) -> int:
        return self.num_producers * self.rounds


def _put(values: tuple, index: int, value) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


def initial_state(c: ProducersConstants) -> ProducersState:
    """spec: Init."""
    n, m = c.num_producers, c.num_lanes
    empty = frozenset()
    return ProducersState((IDLE,) * n, (0,) * n, ((),) * n, (empty,) * n,
                          ((0,) * m,) * n, (1,) * m, (empty,) * m, (empty,) * m, (0,) * m)


def lock_orders(c: ProducersConstants, batch: tuple[int, ...]) -> list[tuple[int, ...]]:
    """spec: LockOrders(B) (AnyLockOrder(B) when overridden)."""
    if c.any_lock_order:
        return list(permutations(batch))
    return [tuple(sorted(batch))]


def reserved(c: ProducersConstants, s: ProducersState, p: int) -> list[int]:
    """spec: Reserved(p)."""
    return [l for l in c.lanes if s.resv[p - 1][l - 1] != 0]


def next_lane(c: ProducersConstants, s: ProducersState, p: int) -> int:
    """spec: NextLane(p)."""
    return s.order[p - 1][len(reserved(c, s, p))]


def held_by_other(c: ProducersConstants, s: ProducersState, p: int, lane: int) -> bool:
    """spec: HeldByOther(p, l)."""
    return any(lane in s.held[q - 1] for q in c.producers if q != p)


def blocked(c: ProducersConstants, s: ProducersState, p: int) -> bool:
    """spec: Blocked(p)."""
    return (s.pc[p - 1] == LOCKING and len(reserved(c, s, p)) < len(s.order[p - 1])
            and held_by_other(c, s, p, next_lane(c, s, p)))


def deadlocked(c: ProducersConstants, s: ProducersState) -> bool:
    """spec: Deadlocked."""
    people = list(c.producers)
    for size in range(1, len(people) + 1):
        for group in combinations(people, size):
            if all(blocked(c, s, p) and any(next_lane(c, s, p) in s.held[q - 1] for q in group)
                   for p in group):
                return True
    return False


# --- actions -------------------------------------------------------------


def begin(c, s, p, order):
    """spec: Begin(p, B) with the lock order chosen from LockOrders(B)."""
    if s.pc[p - 1] != IDLE or s.rounds[p - 1] >= c.rounds:
        return None
    return s._replace(order=_put(s.order, p - 1, order), pc=_put(s.pc, p - 1, LOCKING),
                      rounds=_put(s.rounds, p - 1, s.rounds[p - 1] + 1))


def reserve(c, s, p):
    """spec: Reserve(p) (ReserveAfterBump: the row takes the head after the bump)."""
    if s.pc[p - 1] != LOCKING or len(reserved(c, s, p)) >= len(s.order[p - 1]):
        return None
    lane = next_lane(c, s, p)
    if held_by_other(c, s, p, lane):
        return None
    return s._replace(
        held=_put(s.held, p - 1, s.held[p - 1] | {lane}),
        resv=_put(s.resv, p - 1, _put(s.resv[p - 1], lane - 1, s.lane_next[lane - 1] + c.reserve_after_bump)),
        lane_next=_put(s.lane_next, lane - 1, s.lane_next[lane - 1] + 1),
    )


def write(c, s, p):
    """spec: Write(p)."""
    if s.pc[p - 1] != LOCKING or len(reserved(c, s, p)) != len(s.order[p - 1]):
        return None
    held = _put(s.held, p - 1, frozenset()) if c.early_release else s.held
    return s._replace(pc=_put(s.pc, p - 1, WRITTEN), held=held)


def _finish(c, s, p):
    """spec: Finish(p)."""
    return s._replace(pc=_put(s.pc, p - 1, IDLE), held=_put(s.held, p - 1, frozenset()),
                      resv=_put(s.resv, p - 1, (0,) * c.num_lanes), order=_put(s.order, p - 1, ()))


def commit(c, s, p):
    """spec: Commit(p)."""
    if s.pc[p - 1] != WRITTEN:
        return None
    mine = s.resv[p - 1]
    committed = tuple(done | {mine[i]} if mine[i] else done for i, done in enumerate(s.committed))
    return _finish(c, s._replace(committed=committed), p)


def rollback(c, s, p):
    """spec: Rollback(p)."""
    if s.pc[p - 1] not in (LOCKING, WRITTEN):
        return None
    lane_next = s.lane_next
    if not c.early_release:
        mine = s.resv[p - 1]
        lane_next = tuple(mine[i] if mine[i] else n for i, n in enumerate(lane_next))
    return _finish(c, s._replace(lane_next=lane_next), p)


def claim(c, s, lane):
    """spec: Claim(l)."""
    after = [n for n in s.committed[lane - 1] if n > s.claim_head[lane - 1]]
    if not after:
        return None
    n = min(after)
    return s._replace(claim_head=_put(s.claim_head, lane - 1, n),
                      claimed=_put(s.claimed, lane - 1, s.claimed[lane - 1] | {n}))


def successors(c: ProducersConstants, s: ProducersState) -> Iterator[Transition]:
    """spec: Next."""
    lanes = list(c.lanes)
    for p in c.producers:
        for size in range(1, len(lanes) + 1):
            for batch in combinations(lanes, size):
                for order in lock_orders(c, batch):
                    nxt = begin(c, s, p, order)
                    if nxt is not None:
                        yield ("Begin", (p, frozenset(batch))), nxt
    for p in c.producers:
        for name, action in (("Reserve", reserve), ("Write", write),
                             ("Commit", commit), ("Rollback", rollback)):
            nxt = action(c, s, p)
            if nxt is not None:
                yield (name, (p,)), nxt
    for lane in c.lanes:
        nxt = claim(c, s, lane)
        if nxt is not None:
            yield ("Claim", (lane,)), nxt


# --- invariants ----------------------------------------------------------


def type_ok(c: ProducersConstants, s: ProducersState) -> bool:
    """spec: TypeOK."""
    top = c.max_seq
    numbers = set(range(1, top + 1))
    return (all(x in (IDLE, LOCKING, WRITTEN) for x in s.pc)
            and all(0 <= r <= c.rounds for r in s.rounds)
            and all(set(o) <= set(c.lanes) for o in s.order)
            and all(h <= set(c.lanes) for h in s.held)
            and all(0 <= n <= top for row in s.resv for n in row)
            and all(1 <= n <= top + 1 for n in s.lane_next)
            and all(x <= numbers for x in s.committed + s.claimed)
            and all(0 <= n <= top for n in s.claim_head))


def no_committed_job_skipped(c: ProducersConstants, s: ProducersState) -> bool:
    """spec: NoCommittedJobSkipped."""
    return all(n in s.claimed[i] for i, done in enumerate(s.committed)
               for n in done if n <= s.claim_head[i])


def lane_numbers_commit_ordered(c: ProducersConstants, s: ProducersState) -> bool:
    """spec: LaneNumbersCommitOrdered."""
    return all(n < s.resv[p - 1][l - 1] for p in c.producers for l in reserved(c, s, p)
               for n in s.committed[l - 1])


def lock_order_deadlock_free(c: ProducersConstants, s: ProducersState) -> bool:
    """spec: LockOrderDeadlockFree."""
    return not deadlocked(c, s)


INVARIANTS = {
    "TypeOK": type_ok,
    "NoCommittedJobSkipped": no_committed_job_skipped,
    "LaneNumbersCommitOrdered": lane_numbers_commit_ordered,
    "LockOrderDeadlockFree": lock_order_deadlock_free,
}
ACTIONS = {"Begin": begin, "Reserve": reserve, "Write": write, "Commit": commit,
           "Rollback": rollback, "Claim": claim}
SPECIFICATIONS = {"Spec": ()}


def violated_invariants(c: ProducersConstants, s: ProducersState) -> list[str]:
    """Names of the invariants that do not hold in ``s`` (for replays of runs)."""
    return [name for name, predicate in INVARIANTS.items() if not predicate(c, s)]


def render(s: ProducersState) -> str:
    txns = " ".join(f"p{i + 1}:{pc}{list(s.order[i]) if s.order[i] else ''}"
                    f" resv={list(s.resv[i])} held={sorted(s.held[i])}"
                    for i, pc in enumerate(s.pc))
    lanes = " ".join(f"l{i + 1}: next={s.lane_next[i]} committed={sorted(s.committed[i])} "
                     f"claimed={sorted(s.claimed[i])} head={s.claim_head[i]}"
                     for i in range(len(s.lane_next)))
    return f"{txns} | {lanes}"


def build_model(config: ModelConfig) -> Model:
    c = ProducersConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"producers mirror has no specification {config.specification!r}")
    return Model(
        name=f"ConcurrentProducers/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        render=render,
    )
