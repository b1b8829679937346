"""Python mirror of ``specs/PartitionedQueueRepartition.tla`` (issue 23, ADR 0024).

Online repartitioning with width epochs, marks and fences.  Each spec action
is a function of the constants and a state returning the successor (None:
not enabled); :class:`RepartitionState` has one field per spec variable, with
the same values, so the explorer's distinct-state count equals TLC's.

Broken designs are the cfg's definition overrides (``UseFences <- NoFences``
and so on, from ``specs/PartitionedQueueRepartitionBroken.tla``), read into
switches of :class:`RepartitionConstants`.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import Callable, Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Fairness, LeadsTo, Model, Transition

NONE, READY, RUNNING, CRASHED, DONE = "none", "ready", "running", "crashed", "done"
NO_FENCE, UP, LIFTED = "none", "up", "lifted"

OVERRIDES = {
    ("UseFences", "NoFences"): "no_fences",
    ("LiftSlack", "OneEarly"): "one_early",
    ("ExcludesProducers", "NotExcluded"): "not_excluded",
    ("ChainedLift", "NoChain"): "no_chain",
    ("EarlierChange", "SameOrEarlier"): "same_or_earlier",
    ("ServedLane", "CurrentWidthOnly"): "current_width_only",
    ("RescueNewSeq", "KeepSeq"): "keep_seq",
    ("Change", "ChangeMarksNextSeq"): "marks_next_seq",
}


class RepartitionState(NamedTuple):
    epoch: int
    pc: str  # "idle" / "locked"
    read_epoch: int
    next_seq: tuple[int, ...]  # per lane 0..max_width-1
    claim_seq: tuple[int, ...]
    enqueued: int
    status: tuple[str, ...]  # per job 1..max_jobs
    key: tuple[int, ...]
    lane: tuple[int, ...]
    seq: tuple[int, ...]
    crashes: int
    mark: tuple[tuple[int, ...], ...]  # per change 2..len(widths), per lane
    fence: tuple[tuple[str, ...], ...]
    outs: tuple[int, ...]  # first hand-outs, in order


@dataclass(frozen=True)
class RepartitionConstants:
    widths: tuple[int, ...]
    key_hash: tuple[int, ...]
    max_jobs: int
    max_crashes: int
    broken: frozenset[str] = frozenset()

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "RepartitionConstants":
        c = config.constants
        return cls(
            widths=(int(c["Width1"]), int(c["Width2"]), int(c["Width3"])),
            key_hash=(int(c["KeyHash1"]), int(c["KeyHash2"])),
            max_jobs=int(c["MaxJobs"]),
            max_crashes=int(c["MaxCrashes"]),
            broken=frozenset(switches(config, OVERRIDES)),
        )

    def __post_init__(self) -> None:
        # Fixed sets, computed once (the explorer asks for them per state).
        lanes = tuple(range(max(self.widths)))
        changes = tuple(range(2, len(self.widths) + 1))
        object.__setattr__(self, "lanes", lanes)
        object.__setattr__(self, "changes", changes)
        object.__setattr__(self, "keys", tuple(range(1, len(self.key_hash) + 1)))
        object.__setattr__(self, "jobs", tuple(range(1, self.max_jobs + 1)))
        object.__setattr__(self, "_sources", {
            (e, l): self._compute_sources(e, l) for e in changes for l in lanes
        })

    @property
    def no_limit(self) -> int:
        return self.max_jobs + self.max_crashes + 1

    def width(self, e: int) -> int:
        return self.widths[e - 1]

    def lane_of(self, k: int, e: int) -> int:
        return self.key_hash[k - 1] % self.width(e)

    def sources(self, e: int, l: int) -> frozenset[int]:
        """spec: Sources(e, l)."""
        return self._sources[(e, l)]

    def _compute_sources(self, e: int, l: int) -> frozenset[int]:
        new, old = self.width(e), self.width(e - 1)
        if l >= new:
            return frozenset()
        g = gcd(old, new)
        return frozenset(p for p in range(old) if p != l and p % g == l % g)


def _set(t: tuple, i: int, v: object) -> tuple:
    return t[:i] + (v,) + t[i + 1:]


def initial_state(c: RepartitionConstants) -> RepartitionState:
    lanes, jobs, changes = len(c.lanes), c.max_jobs, len(c.changes)
    return RepartitionState(
        epoch=1, pc="idle", read_epoch=0,
        next_seq=(1,) * lanes, claim_seq=(0,) * lanes, enqueued=0,
        status=(NONE,) * jobs, key=(0,) * jobs, lane=(0,) * jobs, seq=(0,) * jobs,
        crashes=0,
        mark=((0,) * lanes,) * changes, fence=((NO_FENCE,) * lanes,) * changes,
        outs=(),
    )


def limit(c: RepartitionConstants, s: RepartitionState, l: int) -> int:
    """spec: Limit(l), the lane's smallest unlifted fence."""
    up = [s.mark[i][l] for i in range(len(c.changes)) if s.fence[i][l] == UP]
    return min(up) if up else c.no_limit


def source_done(c: RepartitionConstants, s: RepartitionState, e: int, src: int) -> bool:
    """spec: SourceDone(e, s)."""
    slack = 1 if "one_early" in c.broken else 0
    if s.claim_seq[src] < s.mark[e - 2][src] - slack:
        return False
    if "no_chain" in c.broken:
        return True
    earlier = (lambda f: f <= e) if "same_or_earlier" in c.broken else (lambda f: f < e)
    return all(s.fence[f - 2][src] != UP for f in c.changes if earlier(f))


def begin(c: RepartitionConstants, s: RepartitionState) -> RepartitionState | None:
    if s.pc != "idle" or s.enqueued >= c.max_jobs:
        return None
    return s._replace(pc="locked", read_epoch=s.epoch)


def insert(c: RepartitionConstants, s: RepartitionState, k: int) -> RepartitionState | None:
    if s.pc != "locked":
        return None
    j = s.enqueued + 1
    l = c.lane_of(k, s.read_epoch)
    i = j - 1
    return s._replace(
        enqueued=j, status=_set(s.status, i, READY), key=_set(s.key, i, k),
        lane=_set(s.lane, i, l), seq=_set(s.seq, i, s.next_seq[l]),
        next_seq=_set(s.next_seq, l, s.next_seq[l] + 1), pc="idle", read_epoch=0,
    )


def change(c: RepartitionConstants, s: RepartitionState) -> RepartitionState | None:
    if s.epoch >= len(c.widths):
        return None
    if "not_excluded" not in c.broken and s.pc != "idle":
        return None
    e = s.epoch + 1
    last_taken = 0 if "marks_next_seq" in c.broken else 1  # spec: ChangeMarksNextSeq
    marks = tuple(n - last_taken for n in s.next_seq)
    fences = tuple(
        UP if "no_fences" not in c.broken and c.sources(e, l) else NO_FENCE for l in c.lanes
    )
    return s._replace(epoch=e, mark=_set(s.mark, e - 2, marks), fence=_set(s.fence, e - 2, fences))


def lift_fence(c: RepartitionConstants, s: RepartitionState, e: int, l: int) -> RepartitionState | None:
    if s.fence[e - 2][l] != UP:
        return None
    if not all(source_done(c, s, e, src) for src in c.sources(e, l)):
        return None
    return s._replace(fence=_set(s.fence, e - 2, _set(s.fence[e - 2], l, LIFTED)))


def job_at(c: RepartitionConstants, s: RepartitionState, l: int, n: int) -> int:
    """spec: JobAt(l, n)."""
    for j in c.jobs:
        i = j - 1
        if s.status[i] == READY and s.lane[i] == l and s.seq[i] == n:
            return j
    raise AssertionError(f"no ready job at lane {l} seq {n}")  # TLC: CHOOSE error


def claim(c: RepartitionConstants, s: RepartitionState, l: int) -> RepartitionState | None:
    if "current_width_only" in c.broken and l >= c.width(s.epoch):
        return None
    n = s.claim_seq[l] + 1
    if n >= s.next_seq[l] or n > limit(c, s, l):
        return None
    j = job_at(c, s, l, n)
    outs = s.outs if j in s.outs else s.outs + (j,)
    return s._replace(status=_set(s.status, j - 1, RUNNING), outs=outs,
                      claim_seq=_set(s.claim_seq, l, n))


def complete(c: RepartitionConstants, s: RepartitionState, j: int) -> RepartitionState | None:
    if s.status[j - 1] != RUNNING:
        return None
    return s._replace(status=_set(s.status, j - 1, DONE))


def crash(c: RepartitionConstants, s: RepartitionState, j: int) -> RepartitionState | None:
    if s.status[j - 1] != RUNNING or s.crashes >= c.max_crashes:
        return None
    return s._replace(status=_set(s.status, j - 1, CRASHED), crashes=s.crashes + 1)


def rescue(c: RepartitionConstants, s: RepartitionState, j: int) -> RepartitionState | None:
    i = j - 1
    if s.status[i] != CRASHED:
        return None
    s = s._replace(status=_set(s.status, i, READY))
    if "keep_seq" in c.broken:
        return s
    l = c.lane_of(s.key[i], s.epoch)
    return s._replace(lane=_set(s.lane, i, l), seq=_set(s.seq, i, s.next_seq[l]),
                      next_seq=_set(s.next_seq, l, s.next_seq[l] + 1))


def successors(c: RepartitionConstants, s: RepartitionState) -> Iterator[Transition]:
    candidates = [(("Begin", ()), begin(c, s))]
    candidates += [(("Insert", (k,)), insert(c, s, k)) for k in c.keys]
    candidates.append((("Change", ()), change(c, s)))
    candidates += [(("LiftFence", (e, l)), lift_fence(c, s, e, l)) for e in c.changes for l in c.lanes]
    candidates += [(("Claim", (l,)), claim(c, s, l)) for l in c.lanes]
    for j in c.jobs:
        candidates += [(("Complete", (j,)), complete(c, s, j)), (("Crash", (j,)), crash(c, s, j)),
                       (("Rescue", (j,)), rescue(c, s, j))]
    for label, nxt in candidates:
        if nxt is not None:
            yield label, nxt


# --- properties -----------------------------------------------------------------


def type_ok(c: RepartitionConstants, s: RepartitionState) -> bool:
    """spec: TypeOK."""
    max_seq = c.max_jobs + c.max_crashes
    return (
        1 <= s.epoch <= len(c.widths)
        and s.pc in ("idle", "locked")
        and 0 <= s.read_epoch <= len(c.widths)
        and all(1 <= n <= max_seq + 1 for n in s.next_seq)
        and all(0 <= n <= max_seq for n in s.claim_seq)
        and 0 <= s.enqueued <= c.max_jobs
        and all(st in (NONE, READY, RUNNING, CRASHED, DONE) for st in s.status)
        and all(k == 0 or k in c.keys for k in s.key)
        and all(l in c.lanes for l in s.lane)
        and all(0 <= n <= max_seq for n in s.seq)
        and 0 <= s.crashes <= c.max_crashes
        and all(0 <= m <= max_seq for row in s.mark for m in row)
        and all(f in (NO_FENCE, UP, LIFTED) for row in s.fence for f in row)
        and all(j in c.jobs for j in s.outs)
    )


def per_key_fifo(c: RepartitionConstants, s: RepartitionState) -> bool:
    """spec: PerKeyFIFO."""
    position = {j: i for i, j in enumerate(s.outs)}
    for b in s.outs:
        for a in range(1, b):
            if s.key[a - 1] == s.key[b - 1] and not (a in position and position[a] < position[b]):
                return False
    return True


def no_job_lost(c: RepartitionConstants, s: RepartitionState) -> bool:
    """spec: NoJobLost."""
    handed = set(s.outs)
    for j in range(1, s.enqueued + 1):
        i = j - 1
        if s.status[i] == READY and s.seq[i] <= s.claim_seq[s.lane[i]]:
            return False
        if s.status[i] in (RUNNING, CRASHED, DONE) and j not in handed:
            return False
    return len(handed) == len(s.outs)


STATE_INVARIANTS: dict[str, Callable[[RepartitionConstants, RepartitionState], bool]] = {
    "TypeOK": type_ok,
    "PerKeyFIFO": per_key_fifo,
    "NoJobLost": no_job_lost,
}
LIVENESS = {"EveryJobHandedOut"}
SPECIFICATIONS: dict[str, tuple[str, ...]] = {"Spec": ("Claim", "LiftFence")}


def every_job_handed_out(c: RepartitionConstants) -> LeadsTo:
    """spec: EveryJobHandedOut == \\A j \\in Jobs : (j <= enqueued) ~> (j \\in Handed)."""
    return LeadsTo(tuple(c.jobs), lambda j, s: j <= s.enqueued, lambda j, s: j in s.outs)


def fairness(c: RepartitionConstants) -> tuple[Fairness, ...]:
    """spec: Fairness -- WF per lane (Claim(l)) and per fence (LiftFence(e, l))."""
    per_lane = tuple(Fairness(f"Claim({l})", frozenset({"Claim"}), params=(l,)) for l in c.lanes)
    per_fence = tuple(
        Fairness(f"LiftFence({e}, {l})", frozenset({"LiftFence"}), params=(e, l))
        for e in c.changes for l in c.lanes
    )
    return per_lane + per_fence


def render(s: RepartitionState) -> str:
    jobs = " ".join(
        f"j{j}:k{k}@{l}#{n}:{st}"
        for j, (st, k, l, n) in enumerate(zip(s.status, s.key, s.lane, s.seq), start=1)
        if st != NONE
    )
    lanes = " ".join(f"L{l}[{c}/{n - 1}]" for l, (c, n) in enumerate(zip(s.claim_seq, s.next_seq)))
    fences = " ".join(
        f"e{i + 2}:" + ",".join(f"{l}{'^' if f == UP else 'v'}{s.mark[i][l]}"
                               for l, f in enumerate(row) if f != NO_FENCE)
        for i, row in enumerate(s.fence)
    )
    return (f"epoch={s.epoch} pc={s.pc}/{s.read_epoch} | {lanes} | {jobs or '-'} | "
            f"fences {fences} | outs={list(s.outs)} crashes={s.crashes}")


def build_model(config: ModelConfig) -> Model:
    c = RepartitionConstants.from_cfg(config)
    return Model(
        name=f"PartitionedQueueRepartition/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in STATE_INVARIANTS.items()},
        liveness={"EveryJobHandedOut": every_job_handed_out(c)},
        fairness=fairness(c) if config.specification == "Spec" else (),
        render=render,
    )
