"""Python mirror of ``specs/KeyConcurrency.tla`` (per-key concurrency, ADR 0020).

Each spec action is a function of the constants and a state returning the
successor (None: not enabled); states are :class:`KeyState` tuples whose
fields are the spec's variables, so the explorer's distinct-state count
equals TLC's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig
from verification.mirrors.explore import Model, Transition

NO_JOB = 0
NO_ONE = 0


class KeyState(NamedTuple):
    state: tuple[str, ...]  # per job: "avail" / "running" / "done"
    leased: tuple[bool, ...]
    keyed: tuple[bool, ...]
    grants: frozenset[int]
    limit: int
    pending: int
    pc: tuple[str, ...]  # per claimer: "idle" / "checked"
    pick: tuple[int, ...]
    seen: tuple[int, ...]
    lock: int
    lane: tuple[int, ...]  # available jobs in lane order
    parked: frozenset[int]
    head: int
    overtaken: bool


@dataclass(frozen=True)
class KeyConstants:
    num_jobs: int
    num_claimers: int
    init_limit: int
    max_limit: int
    serialised: bool
    rescue_keeps_key: bool
    lower_drains: bool
    park_behind: bool
    head_kept: bool

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "KeyConstants":
        c = config.constants
        return cls(
            num_jobs=int(c["NumJobs"]),
            num_claimers=int(c["NumClaimers"]),
            init_limit=int(c["InitLimit"]),
            max_limit=int(c["MaxLimit"]),
            serialised=bool(c["Serialised"]),
            rescue_keeps_key=bool(c["RescueKeepsKey"]),
            lower_drains=bool(c["LowerDrains"]),
            park_behind=bool(c["ParkBehind"]),
            head_kept=bool(c["HeadKept"]),
        )


def _set(t: tuple, i: int, v: object) -> tuple:
    return t[:i] + (v,) + t[i + 1:]


def admits(s: KeyState) -> int:
    return s.pending if s.pending != 0 and s.pending < s.limit else s.limit


def all_idle(s: KeyState) -> bool:
    return all(p == "idle" for p in s.pc)


def first_of(s: KeyState, jobs: frozenset[int] | set[int]) -> int:
    """spec: FirstOf -- the job of the set earliest in the lane."""
    return next(j for j in s.lane if j in jobs)


def unpicked(s: KeyState) -> list[int]:
    return [j for j in s.lane if j not in s.pick]


def candidates(s: KeyState) -> set[int]:
    """spec: Candidates -- unkeyed jobs, the head, the first job not parked."""
    free = unpicked(s)
    out = {j for j in free if not s.keyed[j - 1]}
    if s.head in free:
        out.add(s.head)
    fresh = [j for j in free if s.keyed[j - 1] and j not in s.parked]
    if fresh:
        out.add(fresh[0])
    return out


def initial_state(c: KeyConstants) -> KeyState:
    return KeyState(
        state=("avail",) * c.num_jobs,
        leased=(False,) * c.num_jobs,
        keyed=(True,) * c.num_jobs,
        grants=frozenset(),
        limit=c.init_limit,
        pending=0,
        pc=("idle",) * c.num_claimers,
        pick=(NO_JOB,) * c.num_claimers,
        seen=(0,) * c.num_claimers,
        lock=NO_ONE,
        lane=tuple(range(1, c.num_jobs + 1)),
        parked=frozenset(),
        head=NO_JOB,
        overtaken=False,
    )


def check(c: KeyConstants, s: KeyState, cl: int, j: int) -> KeyState | None:
    i, k = cl - 1, j - 1
    if s.pc[i] != "idle" or j not in candidates(s):
        return None
    lock = s.lock
    if s.keyed[k] and c.serialised:
        if s.lock != NO_ONE:
            return None
        lock = cl
    return s._replace(seen=_set(s.seen, i, len(s.grants)), pc=_set(s.pc, i, "checked"),
                      pick=_set(s.pick, i, j), lock=lock)


def take(c: KeyConstants, s: KeyState, cl: int) -> KeyState | None:
    i = cl - 1
    if s.pc[i] != "checked":
        return None
    j = s.pick[i]
    k = j - 1
    rest = s.parked - {j}
    if not s.keyed[k] or (s.seen[i] < admits(s) and (s.head in (NO_JOB, j) or not c.park_behind)):
        pos = s.lane.index(j)
        early = any(s.keyed[x - 1] and x != j and s.lane.index(x) < pos for x in unpicked(s))
        s = s._replace(state=_set(s.state, k, "running"), leased=_set(s.leased, k, True),
                       grants=s.grants | {j} if s.keyed[k] else s.grants,
                       lane=tuple(x for x in s.lane if x != j), parked=rest,
                       head=s.head if s.head != j else (NO_JOB if not rest else first_of(s, rest)),
                       overtaken=s.overtaken or (s.keyed[k] and early))
    else:
        s = s._replace(parked=s.parked | {j},
                       head=j if s.head == NO_JOB and c.head_kept else s.head)
    return s._replace(lock=NO_ONE if s.lock == cl else s.lock, pc=_set(s.pc, i, "idle"),
                      pick=_set(s.pick, i, NO_JOB), seen=_set(s.seen, i, 0))


def complete(c: KeyConstants, s: KeyState, j: int) -> KeyState | None:
    k = j - 1
    if s.state[k] != "running" or not s.leased[k]:
        return None
    return s._replace(state=_set(s.state, k, "done"), leased=_set(s.leased, k, False), grants=s.grants - {j})


def expire(c: KeyConstants, s: KeyState, j: int) -> KeyState | None:
    k = j - 1
    if s.state[k] != "running" or not s.leased[k]:
        return None
    return s._replace(leased=_set(s.leased, k, False))


def rescue(c: KeyConstants, s: KeyState, j: int) -> KeyState | None:
    k = j - 1
    if s.state[k] != "running" or s.leased[k]:
        return None
    keyed = s.keyed if c.rescue_keeps_key else _set(s.keyed, k, False)
    return s._replace(state=_set(s.state, k, "avail"), grants=s.grants - {j}, keyed=keyed, lane=s.lane + (j,))


def set_limit(c: KeyConstants, s: KeyState, n: int) -> KeyState | None:
    if not all_idle(s) or n == s.limit:
        return None
    if n > s.limit or not c.lower_drains:
        return s._replace(limit=n, pending=0)
    return s._replace(pending=n)


def settle(c: KeyConstants, s: KeyState) -> KeyState | None:
    if not all_idle(s) or s.pending == 0 or len(s.grants) > s.pending:
        return None
    return s._replace(limit=s.pending, pending=0)


def successors(c: KeyConstants, s: KeyState) -> Iterator[Transition]:
    claimers = range(1, c.num_claimers + 1)
    jobs = range(1, c.num_jobs + 1)
    candidates = [(("Check", (cl, j)), check(c, s, cl, j)) for cl in claimers for j in jobs]
    candidates += [(("Take", (cl,)), take(c, s, cl)) for cl in claimers]
    for j in jobs:
        candidates += [(("Complete", (j,)), complete(c, s, j)), (("Expire", (j,)), expire(c, s, j)),
                       (("Rescue", (j,)), rescue(c, s, j))]
    candidates += [(("SetLimit", (n,)), set_limit(c, s, n)) for n in range(1, c.max_limit + 1)]
    candidates.append((("Settle", ()), settle(c, s)))
    for label, nxt in candidates:
        if nxt is not None:
            yield label, nxt


def key_limit(c: KeyConstants, s: KeyState) -> bool:
    """spec: KeyLimit."""
    return sum(1 for st, le in zip(s.state, s.leased) if st == "running" and le) <= s.limit


def key_lane_fifo(c: KeyConstants, s: KeyState) -> bool:
    """spec: KeyLaneFifo."""
    return not s.overtaken


def parked_head_is_first(c: KeyConstants, s: KeyState) -> bool:
    """spec: ParkedHeadIsFirst."""
    return s.head == (NO_JOB if not s.parked else first_of(s, s.parked))


INVARIANTS: dict[str, Callable[[KeyConstants, KeyState], bool]] = {
    "KeyLimit": key_limit, "KeyLaneFifo": key_lane_fifo, "ParkedHeadIsFirst": parked_head_is_first}
ACTIONS = {"Check": check, "Take": take, "Complete": complete, "Expire": expire, "Rescue": rescue,
           "SetLimit": set_limit, "Settle": settle}
SPECIFICATIONS: dict[str, tuple[str, ...]] = {"Spec": ()}  # safety only: no fairness


def render(s: KeyState) -> str:
    jobs = " ".join(f"j{j}:{st}{'+lease' if le else ''}{'' if ke else ' nokey'}"
                    for j, (st, le, ke) in enumerate(zip(s.state, s.leased, s.keyed), start=1))
    return (f"{jobs} | grants {sorted(s.grants)} limit={s.limit} pending={s.pending} | "
            f"pc={s.pc} pick={s.pick} seen={s.seen} lock={s.lock} | lane={s.lane} parked={sorted(s.parked)} "
            f"head={s.head}{' OVERTAKEN' if s.overtaken else ''}")


def build_model(config: ModelConfig) -> Model:
    c = KeyConstants.from_cfg(config)
    return Model(
        name=f"KeyConcurrency/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        render=render,
    )
