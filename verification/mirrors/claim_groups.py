"""Python mirror of ``specs/ClaimGroups.tla`` (the worker's claim batcher).

Each spec action is a function ``action(c, state, *params) -> state | None``
(None: not enabled); each invariant is a predicate ``invariant(c, state)``.
States are :class:`ClaimGroupsState` values whose fields are the spec's
variables, so the explorer's distinct-state count equals TLC's.

:func:`abstract_state` builds the same state from a live
:class:`awa.worker.claim_batcher.ClaimBatcher` (its waiting lists and
statements in flight), which is how the batcher's property test checks these
invariants on the real scheduler after every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, NamedTuple, Sequence

from verification.mirrors.cfg import ModelConfig, switches
from verification.mirrors.explore import LeadsTo, Model, Transition, spec_model

Statement = tuple[int, frozenset[int]]  # spec: [group |-> g, reqs |-> rs]


class ClaimGroupsState(NamedTuple):
    """The spec's variables; per-request tuples are indexed by request id - 1."""

    next_req: int
    queue_of: tuple[int, ...]  # 0 = not asked yet
    waiting: tuple[frozenset[int], ...]  # indexed by group
    flight: frozenset[Statement]
    answered: frozenset[int]
    gone: frozenset[int]
    last_started: int
    dispatch_pending: bool


@dataclass(frozen=True)
class ClaimGroupsConstants:
    num_queues: int
    num_groups: int
    num_requests: int
    drop_gone_first: bool = True
    one_statement_per_group: bool = True
    #: spec (ClaimGroupsBroken): Cleared <- ClearedReady
    clears_ready: bool = False
    #: spec (ClaimGroupsBroken): GroupOf <- GroupOfUnwrapped with Ask <- AskNewList
    unwrapped_groups: bool = False

    def __post_init__(self) -> None:
        if min(self.num_queues, self.num_groups, self.num_requests) < 1:
            raise ValueError("claim-group constants violate the spec's ASSUME")

    @classmethod
    def from_cfg(cls, config: ModelConfig) -> "ClaimGroupsConstants":
        c = config.constants
        on = switches(config, {("Cleared", "ClearedReady"): "clears_ready",
                               ("GroupOf", "GroupOfUnwrapped"): "unwrapped_groups",
                               ("Ask", "AskNewList"): "unwrapped_groups"})
        if "unwrapped_groups" in on and len(config.overrides) < 2:
            raise ValueError(f"{config.path}: GroupOfUnwrapped and AskNewList go together")
        return cls(
            num_queues=int(c["NumQueues"]),
            num_groups=int(c["NumGroups"]),
            num_requests=int(c["NumRequests"]),
            drop_gone_first=bool(c["DropGoneFirst"]),
            one_statement_per_group=bool(c["OneStatementPerGroup"]),
            clears_ready="clears_ready" in on,
            unwrapped_groups="unwrapped_groups" in on,
        )

    @property
    def queues(self) -> range:
        return range(1, self.num_queues + 1)

    @property
    def groups(self) -> range:
        return range(self.num_groups)

    @property
    def requests(self) -> range:
        return range(1, self.num_requests + 1)


def group_of(c: ClaimGroupsConstants, q: int) -> int:
    """spec: GroupOf(q) (GroupOfUnwrapped(q) == q when overridden)."""
    return q if c.unwrapped_groups else q % c.num_groups


def initial_state(c: ClaimGroupsConstants) -> ClaimGroupsState:
    """spec: Init."""
    return ClaimGroupsState(
        next_req=1,
        queue_of=(0,) * c.num_requests,
        waiting=(frozenset(),) * c.num_groups,
        flight=frozenset(),
        answered=frozenset(),
        gone=frozenset(),
        last_started=c.num_groups - 1,
        dispatch_pending=False,
    )


# --- helpers -------------------------------------------------------------


def live(s: ClaimGroupsState, g: int) -> frozenset[int]:
    """spec: Live(g)."""
    return s.waiting[g] - s.gone


def ready(c: ClaimGroupsConstants, s: ClaimGroupsState, fl: frozenset[Statement]) -> list[int]:
    """spec: Ready(fl), in group order."""
    busy = {g for g, _ in fl}
    out = []
    for g in c.groups:
        if c.one_statement_per_group and g in busy:
            continue
        if live(s, g) if c.drop_gone_first else s.waiting[g]:
            out.append(g)
    return out


def chosen(c: ClaimGroupsConstants, s: ClaimGroupsState, fl: frozenset[Statement]) -> list[int]:
    """spec: Chosen(fl): from idle only the ready group first after lastStarted."""
    groups = ready(c, s, fl)
    if groups and not fl:
        return [min(groups, key=lambda g: (g - s.last_started - 1) % c.num_groups)]
    return groups


def dispatch_from(c: ClaimGroupsConstants, s: ClaimGroupsState, fl: frozenset[Statement]) -> ClaimGroupsState:
    """spec: DispatchFrom(fl) -- the primed waiting, flight and lastStarted."""
    busy = {g for g, _ in fl}
    picked = chosen(c, s, fl)
    sent = [g for g in picked if live(s, g)]
    cleared = ready(c, s, fl) if c.clears_ready else picked  # spec: Cleared(fl)
    waiting = tuple(
        frozenset() if g in cleared
        else live(s, g) if c.drop_gone_first and g not in busy
        else s.waiting[g]
        for g in c.groups
    )
    flight = fl | {(g, live(s, g)) for g in sent}
    return s._replace(waiting=waiting, flight=flight,
                      last_started=max(sent) if sent else s.last_started)


# --- actions -------------------------------------------------------------


def ask(c: ClaimGroupsConstants, s: ClaimGroupsState, q: int) -> ClaimGroupsState | None:
    """spec: Ask(q) (AskNewList: a list is made for a group past the last)."""
    if s.next_req > c.num_requests:
        return None
    r, g = s.next_req, group_of(c, q)
    queue_of = s.queue_of[: r - 1] + (q,) + s.queue_of[r:]
    if g >= len(s.waiting):  # only with AskNewList; TypeOK fails in this state
        s = s._replace(waiting=s.waiting + (frozenset(),) * (g + 1 - len(s.waiting)))
    waiting = s.waiting[:g] + (s.waiting[g] | {r},) + s.waiting[g + 1:]
    return s._replace(next_req=r + 1, queue_of=queue_of, waiting=waiting, dispatch_pending=True)


def cancel(c: ClaimGroupsConstants, s: ClaimGroupsState, r: int) -> ClaimGroupsState | None:
    """spec: Cancel(r)."""
    if s.queue_of[r - 1] == 0 or r in s.answered or r in s.gone:
        return None
    return s._replace(gone=s.gone | {r})


def dispatch_soon(c: ClaimGroupsConstants, s: ClaimGroupsState) -> ClaimGroupsState | None:
    """spec: DispatchSoon."""
    if not s.dispatch_pending:
        return None
    return dispatch_from(c, s._replace(dispatch_pending=False), s.flight)


def answer(c: ClaimGroupsConstants, s: ClaimGroupsState, statement: Statement) -> ClaimGroupsState | None:
    """spec: Answer(s)."""
    if statement not in s.flight:
        return None
    _, reqs = statement
    after = dispatch_from(c, s, s.flight - {statement})
    return after._replace(answered=s.answered | (reqs - s.gone))


def successors(c: ClaimGroupsConstants, s: ClaimGroupsState) -> Iterator[Transition]:
    """spec: Next."""
    for q in c.queues:
        nxt = ask(c, s, q)
        if nxt is not None:
            yield ("Ask", (q,)), nxt
    for r in c.requests:
        nxt = cancel(c, s, r)
        if nxt is not None:
            yield ("Cancel", (r,)), nxt
    nxt = dispatch_soon(c, s)
    if nxt is not None:
        yield ("DispatchSoon", ()), nxt
    for statement in sorted(s.flight, key=lambda st: (st[0], sorted(st[1]))):
        nxt = answer(c, s, statement)
        if nxt is not None:
            yield ("Answer", (statement[0], tuple(sorted(statement[1])))), nxt


# --- invariants ----------------------------------------------------------


def type_ok(c: ClaimGroupsConstants, s: ClaimGroupsState) -> bool:
    """spec: TypeOK."""
    requests = set(c.requests)
    return (
        1 <= s.next_req <= c.num_requests + 1
        and len(s.queue_of) == c.num_requests
        and all(0 <= q <= c.num_queues for q in s.queue_of)
        and len(s.waiting) == c.num_groups
        and all(w <= requests for w in s.waiting)
        and all(g in c.groups and reqs <= requests for g, reqs in s.flight)
        and s.answered <= requests
        and s.gone <= requests
        and s.last_started in c.groups
        and isinstance(s.dispatch_pending, bool)
    )


def queues_of(s: ClaimGroupsState, reqs: frozenset[int]) -> set[int]:
    """spec: QueuesOf(rs)."""
    return {s.queue_of[r - 1] for r in reqs}


def one_statement_per_group_in_flight(c: ClaimGroupsConstants, s: ClaimGroupsState) -> bool:
    """spec: OneStatementPerGroupInFlight."""
    groups = [g for g, _ in s.flight]
    return len(groups) == len(set(groups))


def queue_in_one_statement(c: ClaimGroupsConstants, s: ClaimGroupsState) -> bool:
    """spec: QueueInOneStatement."""
    seen: set[int] = set()
    for _, reqs in s.flight:
        queues = queues_of(s, reqs)
        if seen & queues:
            return False
        seen |= queues
    return True


def requests_stay_in_their_group(c: ClaimGroupsConstants, s: ClaimGroupsState) -> bool:
    """spec: RequestsStayInTheirGroup."""
    return all(
        group_of(c, s.queue_of[r - 1]) == g for g in c.groups for r in s.waiting[g]
    ) and all(group_of(c, s.queue_of[r - 1]) == g for g, reqs in s.flight for r in reqs)


def no_request_lost(c: ClaimGroupsConstants, s: ClaimGroupsState) -> bool:
    """spec: NoRequestLost."""
    for r in c.requests:
        q = s.queue_of[r - 1]
        if q == 0 or r in s.gone:
            continue
        places = (r in s.waiting[group_of(c, q)]) + sum(r in reqs for _, reqs in s.flight) + (r in s.answered)
        if places != 1:
            return False
    return True


def every_request_ends(c: ClaimGroupsConstants) -> LeadsTo:
    """spec: EveryRequestEnds == \\A r : queueOf[r] # 0 ~> r \\in answered \\cup gone."""
    return LeadsTo(
        instances=tuple(c.requests),
        premise=lambda r, s: s.queue_of[r - 1] != 0,
        goal=lambda r, s: r in s.answered or r in s.gone,
    )


INVARIANTS: dict[str, Callable[[ClaimGroupsConstants, ClaimGroupsState], bool]] = {
    "TypeOK": type_ok,
    "QueueInOneStatement": queue_in_one_statement,
    "OneStatementPerGroupInFlight": one_statement_per_group_in_flight,
    "RequestsStayInTheirGroup": requests_stay_in_their_group,
    "NoRequestLost": no_request_lost,
}
LIVENESS = {"EveryRequestEnds": every_request_ends}
ACTIONS = {"Ask": ask, "Cancel": cancel, "DispatchSoon": dispatch_soon, "Answer": answer}

# spec: WF_vars(DispatchSoon) and WF_vars(\E s \in flight : Answer(s)).
FAIRNESS = {
    "DispatchSoon": frozenset({"DispatchSoon"}),
    "AnswerSome": frozenset({"Answer"}),
}
SPECIFICATIONS = {"Spec": ("DispatchSoon", "AnswerSome")}


def render(s: ClaimGroupsState) -> str:
    asked = " ".join(
        f"r{r}:q{q}{' gone' if r in s.gone else ''}{' answered' if r in s.answered else ''}"
        for r, q in enumerate(s.queue_of, start=1)
        if q
    )
    waiting = " ".join(f"g{g}:{sorted(w)}" for g, w in enumerate(s.waiting))
    flight = " ".join(f"[g{g} {sorted(reqs)}]" for g, reqs in sorted(s.flight, key=lambda x: x[0]))
    return (f"{asked or 'no requests'} | waiting {waiting} | flight {flight or '-'} | "
            f"lastStarted={s.last_started}{' dispatch pending' if s.dispatch_pending else ''}")


def build_model(config: ModelConfig) -> Model:
    """The explorer's view of this spec under one cfg."""
    return spec_model('ClaimGroups', config, ClaimGroupsConstants.from_cfg(config), initial_state=initial_state,
                      successors=successors, invariants=INVARIANTS, liveness=LIVENESS,
                      fairness=FAIRNESS, specifications=SPECIFICATIONS, render=render)


# --- the real batcher, seen through the spec ------------------------------


def violated_invariants(c: ClaimGroupsConstants, s: ClaimGroupsState) -> list[str]:
    """Names of the invariants that do not hold in ``s``."""
    return [name for name, predicate in INVARIANTS.items() if not predicate(c, s)]


def abstract_state(batcher: Any, setting: Hashable, asked: Sequence[tuple[int, Any]]) -> ClaimGroupsState:
    """The spec state of a live :class:`~awa.worker.claim_batcher.ClaimBatcher`.

    ``asked`` lists the requests in the order they were made, as (queue id,
    the batcher's future for it); request ids are positions in that list, and
    queue ids must satisfy ``GroupOf(q) == batcher.group_of(name)``. A future
    with a result (or an error) is answered, a cancelled one is gone.
    """
    ids = {future: r for r, (_, future) in enumerate(asked, start=1)}
    groups = range(batcher._groups)
    waiting = tuple(
        frozenset(ids[future] for _, _, future in batcher._waiting.get((setting, g), ())) for g in groups
    )
    flight = frozenset(
        (g, frozenset(ids[future] for _, _, future in batch))
        for (where, g), batch in batcher._in_flight.items()
        if where == setting
    )
    return ClaimGroupsState(
        next_req=len(asked) + 1,
        queue_of=tuple(q for q, _ in asked),
        waiting=waiting,
        flight=flight,
        answered=frozenset(r for r, (_, f) in enumerate(asked, start=1) if f.done() and not f.cancelled()),
        gone=frozenset(r for r, (_, f) in enumerate(asked, start=1) if f.cancelled()),
        last_started=batcher._last_started.get(setting, batcher._groups - 1),
        dispatch_pending=setting in batcher._dispatch_pending,
    )


INTERNAL_ACTIONS = frozenset({"DispatchSoon", "Answer"})


def explains(
    c: ClaimGroupsConstants,
    before: ClaimGroupsState,
    after: ClaimGroupsState,
    environment: Sequence[tuple[str, tuple]] = (),
    max_steps: int = 12,
) -> bool:
    """Whether the spec can go from ``before`` to ``after`` by the environment's
    steps (Ask/Cancel with their parameters), each once and in this order, and
    any number of the batcher's own steps (DispatchSoon, Answer) around them,
    at most ``max_steps`` steps in all."""
    goal = (after, len(environment))
    frontier = {(before, 0)}
    seen = set(frontier)
    for _ in range(max_steps + 1):
        if goal in frontier:
            return True
        nxt = set()
        for state, done in frontier:
            for (name, params), successor in successors(c, state):
                if name in INTERNAL_ACTIONS:
                    item = (successor, done)
                elif done < len(environment) and environment[done] == (name, params):
                    item = (successor, done + 1)
                else:
                    continue
                if item not in seen:
                    seen.add(item)
                    nxt.add(item)
        frontier = nxt
    return False
