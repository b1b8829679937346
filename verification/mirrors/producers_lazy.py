"""Python mirror of ``specs/ProducersLazy.tla`` (single inserts numbered at claim time).

A state is :class:`LazyState`, one field per spec variable; per-producer and
per-claimer tuples are indexed by producer/claimer - 1, functions over
``Ids`` (``after``, ``seqOf``, ``copyNums``) by id - 1.  The broken designs
of ``ProducersLazyBroken.tla`` are switched on by the cfg's definition
overrides.  The design is proposed in ADR 0028 and not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Iterator, NamedTuple

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import Fairness, LeadsTo, Model, Transition

IDLE, OPEN, DONE = "idle", "open", "done"
SEQ, TAKE = "seq", "take"
OVERRIDES = {
    ("CopySequenced", "CopySkipsPending"): "copy_skips_pending",
    ("Ranks", "AnyRanks"): "any_ranks",
    ("SeqVisible", "SeqDirty"): "seq_dirty",
    ("ClaimBegin", "ClaimBeginUnlocked"): "unlocked",
    ("FirstNumber", "FirstAfterBump"): "after_bump",
    ("SeqVisible", "SeqAboveMark"): "above_mark",
}


class LazyState(NamedTuple):
    pc: tuple[str, ...]
    mine: tuple[tuple[int, ...], ...]
    next_id: int
    rows: frozenset[int]
    committed: frozenset[int]
    pending: frozenset[int]
    after: tuple[frozenset[int], ...]
    cbefore: tuple[frozenset[int], ...]
    seq_of: tuple[int, ...]
    lane_next: int
    copy_pc: str
    copy_rows: frozenset[int]
    copy_nums: tuple[int, ...]
    copy_next: int
    cpc: tuple[str, ...]
    seen: tuple[frozenset[int], ...]
    base: tuple[int, ...]
    claim_holder: int
    enq_holder: int
    claimed: frozenset[int]
    cursor: int


@dataclass(frozen=True)
class LazyConstants:
    num_producers: int
    jobs_per_txn: int
    copy_rows: int
    num_claimers: int
    track_commit_order: bool
    copy_skips_pending: bool = False  # spec: CopySequenced <- CopySkipsPending
    any_ranks: bool = False  # spec: Ranks <- AnyRanks
    seq_dirty: bool = False  # spec: SeqVisible <- SeqDirty
    unlocked: bool = False  # spec: ClaimBegin <- ClaimBeginUnlocked
    after_bump: bool = False  # spec: FirstNumber <- FirstAfterBump
    above_mark: bool = False  # spec: SeqVisible <- SeqAboveMark

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "LazyConstants":
        c = config.constants
        on = switches(config, OVERRIDES)
        out = cls(int(c["NumProducers"]), int(c["JobsPerTxn"]), int(c["CopyRows"]),
                  int(c["NumClaimers"]), bool(c["TrackCommitOrder"]), **{name: True for name in on})
        if min(out.num_producers, out.jobs_per_txn, out.num_claimers) < 1 or out.copy_rows < 0:
            raise ValueError("lazy constants violate the spec's ASSUME")
        return out

    @property
    def producers(self) -> range:
        return range(1, self.num_producers + 1)

    @property
    def claimers(self) -> range:
        return range(1, self.num_claimers + 1)

    @property
    def copy_holder(self) -> int:
        return self.num_claimers + 1

    @property
    def max_id(self) -> int:
        return self.num_producers * self.jobs_per_txn + self.copy_rows

    @property
    def ids(self) -> range:
        return range(1, self.max_id + 1)


def _put(values: tuple, index: int, value) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


def initial_state(c: LazyConstants) -> LazyState:
    """spec: Init."""
    n, k, m, empty = c.num_producers, c.num_claimers, c.max_id, frozenset()
    return LazyState((IDLE,) * n, ((),) * n, 1, empty, empty, empty, (empty,) * m, (empty,) * m,
                     (0,) * m, 1,
                     IDLE, empty, (0,) * m, 0, (IDLE,) * k, (empty,) * k, (0,) * k, 0, 0, empty, 0)


# --- the design's operators ------------------------------------------------


def numbered(s: LazyState) -> frozenset[int]:
    """spec: Numbered."""
    return frozenset(i + 1 for i, n in enumerate(s.seq_of) if n)


def seq_visible(c: LazyConstants, s: LazyState) -> frozenset[int]:
    """spec: SeqVisible (SeqDirty or SeqAboveMark when overridden)."""
    if c.seq_dirty:
        return s.pending
    visible = s.pending & s.committed
    if c.above_mark:
        top = max(numbered(s), default=0)
        return frozenset(i for i in visible if i > top)
    return visible


def ranks(c: LazyConstants, ids: frozenset[int]) -> Iterator[dict[int, int]]:
    """spec: Ranks(S) (AnyRanks(S) when overridden)."""
    ordered = sorted(ids)
    if not c.any_ranks:
        yield {i: r for r, i in enumerate(ordered)}
        return
    for perm in permutations(range(len(ordered))):
        yield dict(zip(ordered, perm))


def first_number(c: LazyConstants, head: int, k: int) -> int:
    """spec: FirstNumber(head, k) (FirstAfterBump when overridden)."""
    return head + k if c.after_bump else head


def copy_sequenced(c: LazyConstants, s: LazyState) -> frozenset[int]:
    """spec: CopySequenced (CopySkipsPending when overridden)."""
    return frozenset() if c.copy_skips_pending else seq_visible(c, s)


# --- producers -------------------------------------------------------------


def insert(c, s, p):
    """spec: Insert(p)."""
    reserve = c.copy_rows if s.copy_pc == IDLE else 0
    if s.pc[p - 1] not in (IDLE, OPEN) or len(s.mine[p - 1]) >= c.jobs_per_txn \
            or s.next_id + reserve > c.max_id:
        return None
    i = s.next_id
    return s._replace(pc=_put(s.pc, p - 1, OPEN), mine=_put(s.mine, p - 1, s.mine[p - 1] + (i,)),
                      next_id=i + 1, rows=s.rows | {i}, pending=s.pending | {i},
                      after=_put(s.after, i - 1, s.committed | frozenset(s.mine[p - 1])))


def undo(c, s, p):
    """spec: Undo(p)."""
    if s.pc[p - 1] != OPEN or not s.mine[p - 1]:
        return None
    last = s.mine[p - 1][-1]
    return s._replace(rows=s.rows - {last}, pending=s.pending - {last},
                      mine=_put(s.mine, p - 1, s.mine[p - 1][:-1]))


def commit(c, s, p):
    """spec: Commit(p)."""
    if s.pc[p - 1] != OPEN:
        return None
    mine = frozenset(s.mine[p - 1])
    return s._replace(pc=_put(s.pc, p - 1, DONE), committed=s.committed | mine,
                      cbefore=_commit_order(c, s, mine), mine=_put(s.mine, p - 1, ()))


def _commit_order(c, s, rows):
    """The ghost cbefore' of Commit(p) and CopyCommit: rows committed before these."""
    if not c.track_commit_order:
        return s.cbefore
    return tuple(s.committed if i in rows else s.cbefore[i - 1] for i in c.ids)


def rollback(c, s, p):
    """spec: Rollback(p)."""
    if s.pc[p - 1] != OPEN:
        return None
    gone = frozenset(s.mine[p - 1])
    return s._replace(pc=_put(s.pc, p - 1, DONE), rows=s.rows - gone, pending=s.pending - gone,
                      mine=_put(s.mine, p - 1, ()))


# --- the COPY producer -----------------------------------------------------


def copy_reserve(c, s) -> Iterator[LazyState]:
    """spec: CopyReserve (one successor per ranking)."""
    if s.copy_pc != IDLE or c.copy_rows == 0 or s.enq_holder != 0:
        return
    seq = copy_sequenced(c, s)
    k = len(seq)
    first = first_number(c, s.lane_next, k + c.copy_rows)
    batch = range(s.next_id, s.next_id + c.copy_rows)
    after = tuple(s.committed | {b for b in batch if b < i} if i in batch else s.after[i - 1]
                  for i in c.ids)
    for r in ranks(c, seq):
        nums = tuple(first + r[i] if i in seq else first + k + (i - s.next_id) if i in batch else 0
                     for i in c.ids)
        yield s._replace(copy_nums=nums, copy_next=s.lane_next + k + c.copy_rows,
                         copy_rows=frozenset(batch), rows=s.rows | frozenset(batch), after=after,
                         next_id=s.next_id + c.copy_rows, copy_pc=OPEN, enq_holder=c.copy_holder)


def copy_commit(c, s):
    """spec: CopyCommit."""
    if s.copy_pc != OPEN:
        return None
    return s._replace(committed=s.committed | s.copy_rows, cbefore=_commit_order(c, s, s.copy_rows),
                      seq_of=tuple(n or old for n, old in zip(s.copy_nums, s.seq_of)),
                      pending=s.pending - {i + 1 for i, n in enumerate(s.copy_nums) if n},
                      lane_next=s.copy_next, enq_holder=0, copy_pc=DONE, copy_rows=frozenset(),
                      copy_nums=(0,) * c.max_id, copy_next=0)


def copy_rollback(c, s):
    """spec: CopyRollback."""
    if s.copy_pc != OPEN:
        return None
    return s._replace(rows=s.rows - s.copy_rows, enq_holder=0, copy_pc=DONE, copy_rows=frozenset(),
                      copy_nums=(0,) * c.max_id, copy_next=0)


# --- claimers --------------------------------------------------------------


def _read_for_sequencing(c, s, k):
    return s._replace(cpc=_put(s.cpc, k - 1, SEQ), seen=_put(s.seen, k - 1, seq_visible(c, s)),
                      base=_put(s.base, k - 1, s.lane_next))


def claim_begin(c, s, k):
    """spec: ClaimBegin(c) (ClaimBeginUnlocked(c) when overridden)."""
    if s.cpc[k - 1] != IDLE:
        return None
    if c.unlocked:
        return _read_for_sequencing(c, s, k)
    if s.claim_holder != 0:
        return None
    if s.enq_holder == 0:
        return _read_for_sequencing(c, s, k)._replace(claim_holder=k, enq_holder=k)
    return s._replace(claim_holder=k, cpc=_put(s.cpc, k - 1, TAKE))


def sequence(c, s, k) -> Iterator[LazyState]:
    """spec: Sequence(c) (one successor per ranking)."""
    if s.cpc[k - 1] != SEQ:
        return
    seen, head = s.seen[k - 1], s.base[k - 1]
    first = first_number(c, head, len(seen))
    rest = s._replace(pending=s.pending - seen, lane_next=head + len(seen),
                      cpc=_put(s.cpc, k - 1, TAKE), seen=_put(s.seen, k - 1, frozenset()),
                      base=_put(s.base, k - 1, 0))
    for r in ranks(c, seen):
        yield rest._replace(seq_of=tuple(first + r[i] if i in seen else s.seq_of[i - 1] for i in c.ids))


def take(c, s, k):
    """spec: Take(c)."""
    if s.cpc[k - 1] != TAKE:
        return None
    out = s
    ready = [i for i in s.committed if s.seq_of[i - 1] > s.cursor]
    if ready:
        first = min(ready, key=lambda i: (s.seq_of[i - 1], i))  # CHOOSE: the smallest id
        out = s._replace(claimed=s.claimed | {first}, cursor=s.seq_of[first - 1])
    return out._replace(cpc=_put(s.cpc, k - 1, IDLE),
                        claim_holder=0 if s.claim_holder == k else s.claim_holder,
                        enq_holder=0 if s.enq_holder == k else s.enq_holder)


PER_PRODUCER = {"Insert": insert, "Undo": undo, "Commit": commit, "Rollback": rollback}
COPY = {"CopyCommit": copy_commit, "CopyRollback": copy_rollback}
PER_CLAIMER = {"ClaimBegin": claim_begin, "Take": take}


def successors(c: LazyConstants, s: LazyState) -> Iterator[Transition]:
    """spec: Next."""
    for p in c.producers:
        for name, action in PER_PRODUCER.items():
            nxt = action(c, s, p)
            if nxt is not None:
                yield (name, (p,)), nxt
    for nxt in copy_reserve(c, s):
        yield ("CopyReserve", ()), nxt
    for name, action in COPY.items():
        nxt = action(c, s)
        if nxt is not None:
            yield (name, ()), nxt
    for k in c.claimers:
        nxt = claim_begin(c, s, k)
        if nxt is not None:
            yield ("ClaimBegin", (k,)), nxt
        for nxt in sequence(c, s, k):
            yield ("Sequence", (k,)), nxt
        nxt = take(c, s, k)
        if nxt is not None:
            yield ("Take", (k,)), nxt


# --- properties ------------------------------------------------------------


def type_ok(c: LazyConstants, s: LazyState) -> bool:
    """spec: TypeOK."""
    ids, max_seq = frozenset(c.ids), c.max_id
    return (all(x in (IDLE, OPEN, DONE) for x in s.pc)
            and all(set(m) <= ids and len(m) <= c.jobs_per_txn for m in s.mine)
            and 1 <= s.next_id <= c.max_id + 1
            and s.rows <= ids and s.committed <= s.rows and s.pending <= ids
            and all(a <= ids for a in s.after) and all(a <= ids for a in s.cbefore)
            and all(0 <= n <= max_seq for n in s.seq_of)
            and 1 <= s.lane_next <= max_seq + 1
            and s.copy_pc in (IDLE, OPEN, DONE) and s.copy_rows <= ids
            and all(0 <= n <= max_seq for n in s.copy_nums)
            and 0 <= s.copy_next <= max_seq + 1
            and all(x in (IDLE, SEQ, TAKE) for x in s.cpc)
            and all(x <= ids for x in s.seen)
            and all(0 <= b <= max_seq + 1 for b in s.base)
            and 0 <= s.claim_holder <= c.num_claimers
            and 0 <= s.enq_holder <= c.copy_holder
            and s.claimed <= ids and 0 <= s.cursor <= max_seq)


def no_committed_job_skipped(c: LazyConstants, s: LazyState) -> bool:
    """spec: NoCommittedJobSkipped."""
    return (all(i in s.claimed for i in s.committed if 0 != s.seq_of[i - 1] <= s.cursor)
            and numbered(s) <= s.rows and s.claimed <= s.committed)


def per_key_fifo(c: LazyConstants, s: LazyState) -> bool:
    """spec: PerKeyFifo."""
    return all(a in s.claimed for i in s.claimed for a in s.after[i - 1] if a in s.committed)


def numbers_dense(c: LazyConstants, s: LazyState) -> bool:
    """spec: NumbersDense."""
    return (all(s.seq_of.count(n) == 1 for n in range(1, s.lane_next))
            and all(s.seq_of[i - 1] < s.lane_next for i in numbered(s))
            and {s.seq_of[i - 1] for i in s.claimed} == set(range(1, s.cursor + 1)))


def keys_commit_ordered(c: LazyConstants, s: LazyState) -> bool:
    """spec: KeysCommitOrdered (ADR 0023's order; this design breaks it)."""
    return all(a in s.claimed for i in s.claimed for a in s.cbefore[i - 1])


def every_committed_job_claimed(c: LazyConstants) -> LeadsTo:
    """spec: \\A i \\in Ids : (i \\in committed) ~> (i \\in claimed)."""
    return LeadsTo(tuple(c.ids), lambda i, s: i in s.committed, lambda i, s: i in s.claimed)


INVARIANTS = {
    "TypeOK": type_ok,
    "NoCommittedJobSkipped": no_committed_job_skipped,
    "PerKeyFifo": per_key_fifo,
    "NumbersDense": numbers_dense,
    "KeysCommitOrdered": keys_commit_ordered,
}
LIVENESS = {"EveryCommittedJobClaimed": every_committed_job_claimed}
#: spec: Spec, SpecLongTransactions, SpecLongCopy -- (producers end, the COPY ends).
SPECIFICATIONS = {"Spec": (True, True), "SpecLongTransactions": (False, True),
                  "SpecLongCopy": (True, False)}


def fairness(c: LazyConstants, producers_end: bool, copy_ends: bool) -> tuple[Fairness, ...]:
    """spec: ClaimersFair, and ProducersEnd / CopyEnds as the specification has them."""
    out = [Fairness(f"Claimer({k})", frozenset({"ClaimBegin", "Sequence", "Take"}), params=(k,))
           for k in c.claimers]
    if producers_end:
        out += [Fairness(f"End({p})", frozenset({"Commit", "Rollback"}), params=(p,))
                for p in c.producers]
    if copy_ends:
        out.append(Fairness("CopyEnds", frozenset({"CopyCommit", "CopyRollback"})))
    return tuple(out)


def render(s: LazyState) -> str:
    txns = " ".join(f"p{i + 1}:{pc} rows={list(s.mine[i])}" for i, pc in enumerate(s.pc))
    nums = {i + 1: n for i, n in enumerate(s.seq_of) if n}
    claimers = " ".join(f"c{i + 1}:{x}" for i, x in enumerate(s.cpc))
    return (f"{txns} | copy:{s.copy_pc} {sorted(s.copy_rows)} | rows={sorted(s.rows)} "
            f"committed={sorted(s.committed)} pending={sorted(s.pending)} nums={nums} "
            f"next_seq={s.lane_next} | {claimers} locks=({s.claim_holder}, {s.enq_holder}) "
            f"claimed={sorted(s.claimed)} cursor={s.cursor}")


def build_model(config: ModelConfig) -> Model:
    c = LazyConstants.from_cfg(config)
    if config.specification not in SPECIFICATIONS:
        raise KeyError(f"lazy mirror has no specification {config.specification!r}")
    return Model(
        name=f"ProducersLazy/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in INVARIANTS.items()},
        liveness={n: f(c) for n, f in LIVENESS.items()},
        fairness=fairness(c, *SPECIFICATIONS[config.specification]),
        render=render,
    )
