"""Python mirror of ``specs/ProducersHorizon.tla`` (the visibility-horizon design).

A state is :class:`HorizonState`, one field per spec variable; per-producer
tuples are indexed by producer - 1.  A row of ``jobs`` is the tuple
``(seq, xid, after)`` for the spec's record ``[seq, xid, after]``.  The
broken designs of ``ProducersHorizonBroken.tla`` are switched on by the
cfg's definition overrides.  The design is proposed in ADR 0027 and not
implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Fairness, LeadsTo, Model, Transition

IDLE, OPEN = "idle", "open"
OVERRIDES = {
    ("Gate", "NoGate"): "no_gate",
    ("Key", "SeqKey"): "seq_key",
    ("TakeHorizon", "HorizonNow"): "horizon_now",
    ("SnapRows", "SnapIssued"): "snap_issued",
}

Job = tuple  # (seq, xid, after: frozenset[int])


class HorizonState(NamedTuple):
    pc: tuple[str, ...]
    rounds: tuple[int, ...]
    xid: tuple[int, ...]
    pend: tuple[int, ...]
    mine: tuple[tuple[int, ...], ...]
    before: tuple[frozenset[int], ...]
    next_xid: int
    next_seq: int
    jobs: frozenset[Job]
    committed: frozenset[int]
    claimed: frozenset[int]
    cursor: tuple[int, int]
    snap_h: int
    snap_rows: frozenset[int]


@dataclass(frozen=True)
class HorizonConstants:
    num_producers: int
    rounds: int
    jobs_per_txn: int
    seq_before_xid: bool
    no_gate: bool = False  # spec: Gate <- NoGate
    seq_key: bool = False  # spec: Key <- SeqKey
    horizon_now: bool = False  # spec: TakeHorizon <- HorizonNow
    snap_issued: bool = False  # spec: SnapRows <- SnapIssued

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "HorizonConstants":
        c = config.constants
        on = switches(config, OVERRIDES)
        out = cls(int(c["NumProducers"]), int(c["Rounds"]), int(c["JobsPerTxn"]),
                  bool(c["SeqBeforeXid"]), "no_gate" in on, "seq_key" in on, "horizon_now" in on,
                  "snap_issued" in on)
        if min(out.num_producers, out.rounds, out.jobs_per_txn) < 1:
            raise ValueError("horizon constants violate the spec's ASSUME")
        return out

    @property
    def producers(self) -> range:
        return range(1, self.num_producers + 1)

    @property
    def max_xid(self) -> int:
        return self.num_producers * self.rounds

    @property
    def max_seq(self) -> int:
        return self.num_producers * self.rounds * self.jobs_per_txn


def _put(values: tuple, index: int, value) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


def initial_state(c: HorizonConstants) -> HorizonState:
    """spec: Init."""
    n, empty = c.num_producers, frozenset()
    return HorizonState((IDLE,) * n, (0,) * n, (0,) * n, (0,) * n, ((),) * n, (empty,) * n,
                        1, 1, empty, empty, empty, (0, 0), 0, empty)


# --- helpers -------------------------------------------------------------


def key(c: HorizonConstants, job: Job) -> tuple[int, int]:
    """spec: Key(j) (SeqKey(j) when overridden)."""
    return (0, job[0]) if c.seq_key else (job[1], job[0])


def gate(c: HorizonConstants, job: Job, h: int) -> bool:
    """spec: Gate(j, h) (NoGate when overridden)."""
    return True if c.no_gate else job[1] < h


def job_of(s: HorizonState, seq: int) -> Job:
    """spec: Job(s)."""
    return next(j for j in s.jobs if j[0] == seq)


def horizon(s: HorizonState) -> int:
    """spec: Horizon -- pg_snapshot_xmin: the oldest running xid, else the next."""
    return min([x for x in s.xid if x] + [s.next_xid])


def take_horizon(c: HorizonConstants, s: HorizonState) -> int:
    """spec: TakeHorizon (HorizonNow when overridden)."""
    return horizon(s) if c.horizon_now else s.snap_h


def claimable(c: HorizonConstants, s: HorizonState, h: int) -> list[int]:
    """spec: Claimable(h)."""
    return [n for n in s.snap_rows
            if gate(c, job_of(s, n), h) and key(c, job_of(s, n)) > s.cursor]


# --- actions -------------------------------------------------------------


def begin(c, s, p):
    """spec: Begin(p)."""
    if s.pc[p - 1] != IDLE or s.rounds[p - 1] >= c.rounds:
        return None
    return s._replace(pc=_put(s.pc, p - 1, OPEN), rounds=_put(s.rounds, p - 1, s.rounds[p - 1] + 1))


def _get_xid(s, p):
    """spec: GetXid(p)."""
    return s._replace(xid=_put(s.xid, p - 1, s.next_xid), next_xid=s.next_xid + 1,
                      before=_put(s.before, p - 1, s.committed))


def assign_xid(c, s, p):
    """spec: AssignXid(p)."""
    if s.pc[p - 1] != OPEN or s.xid[p - 1] != 0:
        return None
    return _get_xid(s, p)


def next_seq(c, s, p):
    """spec: NextSeq(p)."""
    if (s.pc[p - 1] != OPEN or s.pend[p - 1] != 0 or len(s.mine[p - 1]) >= c.jobs_per_txn
            or s.next_seq > c.max_seq or not (c.seq_before_xid or s.xid[p - 1] != 0)):
        return None
    return s._replace(pend=_put(s.pend, p - 1, s.next_seq), next_seq=s.next_seq + 1)


def insert(c, s, p):
    """spec: Insert(p)."""
    if s.pc[p - 1] != OPEN or s.pend[p - 1] == 0:
        return None
    seq = s.pend[p - 1]
    t = _get_xid(s, p) if s.xid[p - 1] == 0 else s
    after = t.before[p - 1] | frozenset(s.mine[p - 1])
    return t._replace(jobs=s.jobs | {(seq, t.xid[p - 1], after)},
                      mine=_put(s.mine, p - 1, s.mine[p - 1] + (seq,)),
                      pend=_put(s.pend, p - 1, 0))


def undo(c, s, p):
    """spec: Undo(p)."""
    if s.pc[p - 1] != OPEN or not s.mine[p - 1]:
        return None
    last = s.mine[p - 1][-1]
    return s._replace(jobs=s.jobs - {job_of(s, last)}, mine=_put(s.mine, p - 1, s.mine[p - 1][:-1]))


def _finish(c, s, p):
    """spec: Finish(p)."""
    return s._replace(pc=_put(s.pc, p - 1, IDLE), xid=_put(s.xid, p - 1, 0),
                      pend=_put(s.pend, p - 1, 0), mine=_put(s.mine, p - 1, ()),
                      before=_put(s.before, p - 1, frozenset()))


def commit(c, s, p):
    """spec: Commit(p)."""
    if s.pc[p - 1] != OPEN:
        return None
    return _finish(c, s._replace(committed=s.committed | frozenset(s.mine[p - 1])), p)


def rollback(c, s, p):
    """spec: Rollback(p)."""
    if s.pc[p - 1] != OPEN:
        return None
    mine = set(s.mine[p - 1])
    return _finish(c, s._replace(jobs=frozenset(j for j in s.jobs if j[0] not in mine)), p)


def snap(c, s):
    """spec: Snap."""
    if s.snap_h != 0:
        return None
    rows = frozenset(j[0] for j in s.jobs) if c.snap_issued else s.committed  # spec: SnapRows
    return s._replace(snap_h=horizon(s), snap_rows=rows)


def take(c, s):
    """spec: Take."""
    if s.snap_h == 0:
        return None
    out = s
    ready = claimable(c, s, take_horizon(c, s))
    if ready:
        first = min(ready, key=lambda n: key(c, job_of(s, n)))
        out = s._replace(claimed=s.claimed | {first}, cursor=key(c, job_of(s, first)))
    return out._replace(snap_h=0, snap_rows=frozenset())


PER_PRODUCER = {"Begin": begin, "AssignXid": assign_xid, "NextSeq": next_seq, "Insert": insert,
                "Undo": undo, "Commit": commit, "Rollback": rollback}


def successors(c: HorizonConstants, s: HorizonState) -> Iterator[Transition]:
    """spec: Next."""
    for p in c.producers:
        for name, action in PER_PRODUCER.items():
            nxt = action(c, s, p)
            if nxt is not None:
                yield (name, (p,)), nxt
    for name, action in (("Snap", snap), ("Take", take)):
        nxt = action(c, s)
        if nxt is not None:
            yield (name, ()), nxt


# --- properties ----------------------------------------------------------


def type_ok(c: HorizonConstants, s: HorizonState) -> bool:
    """spec: TypeOK."""
    seqs = frozenset(range(1, c.max_seq + 1))
    return (all(x in (IDLE, OPEN) for x in s.pc)
            and all(0 <= r <= c.rounds for r in s.rounds)
            and all(0 <= x <= c.max_xid for x in s.xid)
            and all(0 <= n <= c.max_seq for n in s.pend)
            and all(set(m) <= seqs and len(m) <= c.jobs_per_txn for m in s.mine)
            and all(b <= seqs for b in s.before)
            and 1 <= s.next_xid <= c.max_xid + 1 and 1 <= s.next_seq <= c.max_seq + 1
            and all(n in seqs and 1 <= x <= c.max_xid and a <= seqs for n, x, a in s.jobs)
            and s.committed <= seqs and s.claimed <= s.committed
            and 0 <= s.cursor[0] <= c.max_xid and 0 <= s.cursor[1] <= c.max_seq
            and 0 <= s.snap_h <= c.max_xid + 1 and s.snap_rows <= s.committed)


def no_committed_job_skipped(c: HorizonConstants, s: HorizonState) -> bool:
    """spec: NoCommittedJobSkipped."""
    return all(n in s.claimed for n in s.committed if not key(c, job_of(s, n)) > s.cursor)


def per_key_fifo(c: HorizonConstants, s: HorizonState) -> bool:
    """spec: PerKeyFifo."""
    return all(a in s.claimed for n in s.claimed for a in job_of(s, n)[2] if a in s.committed)


def keys_commit_ordered(c: HorizonConstants, s: HorizonState) -> bool:
    """spec: KeysCommitOrdered (the current design's order; this one breaks it)."""
    return all(key(c, job_of(s, n)) < key(c, j)
               for j in s.jobs if j[0] not in s.committed for n in s.committed)


def every_committed_job_claimed(c: HorizonConstants) -> LeadsTo:
    """spec: \\A s \\in Seqs : (s \\in committed) ~> (s \\in claimed)."""
    return LeadsTo(tuple(range(1, c.max_seq + 1)), lambda n, s: n in s.committed,
                   lambda n, s: n in s.claimed)


INVARIANTS = {
    "TypeOK": type_ok,
    "NoCommittedJobSkipped": no_committed_job_skipped,
    "PerKeyFifo": per_key_fifo,
    "KeysCommitOrdered": keys_commit_ordered,
}
LIVENESS = {"EveryCommittedJobClaimed": every_committed_job_claimed}
ACTIONS = dict(PER_PRODUCER, Snap=snap, Take=take)
#: spec: Spec and SpecLongTransactions -- whether transactions must end.
SPECIFICATIONS = {"Spec": True, "SpecLongTransactions": False}


def fairness(c: HorizonConstants, transactions_end: bool) -> tuple[Fairness, ...]:
    """spec: WF_vars(Snap \\/ Take) and, in Spec, WF_vars(Commit(p) \\/ Rollback(p))."""
    claimer = (Fairness("Claimer", frozenset({"Snap", "Take"})),)
    if not transactions_end:
        return claimer
    return claimer + tuple(Fairness(f"End({p})", frozenset({"Commit", "Rollback"}), params=(p,))
                           for p in c.producers)


def render(s: HorizonState) -> str:
    txns = " ".join(f"p{i + 1}:{pc} xid={s.xid[i]} pend={s.pend[i]} rows={list(s.mine[i])}"
                    for i, pc in enumerate(s.pc))
    jobs = sorted((n, x) for n, x, _ in s.jobs)
    return (f"{txns} | nextXid={s.next_xid} jobs(seq,xid)={jobs} committed={sorted(s.committed)} "
            f"claimed={sorted(s.claimed)} cursor={s.cursor} snap=({s.snap_h}, {sorted(s.snap_rows)})")


def build_model(config: ModelConfig) -> Model:
    c = HorizonConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"horizon mirror has no specification {config.specification!r}")
    return Model(
        name=f"ProducersHorizon/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        liveness={n: f(c) for n, f in LIVENESS.items()},
        fairness=fairness(c, SPECIFICATIONS[config.specification]),
        render=render,
    )
