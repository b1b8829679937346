"""Explicit-state breadth-first explorer for the Python model mirrors.

It does what TLC does for the models in ``specs/`` -- no more:

* evaluates constant-level invariants once, before exploring (TLC rejects a
  false one at start-up with exit 151 and no trace);
* explores every reachable state breadth-first with exact de-duplication, so
  the number of distinct states equals TLC's "distinct states found";
* checks state invariants (in cfg order) on every new state and action
  properties ``[][A]_vars`` on every transition, reporting a shortest trace;
* checks leads-to properties ``P ~> Q`` under weak and strong fairness by
  looking for a fair strongly connected component (or a fair stuttering
  state) inside the states where P has held and Q does not yet hold.

A model supplies its transitions as ``(label, successor)`` pairs where a label
is ``(action_name, params)``; labels drive traces, fairness and replay.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Mapping, Sequence

State = Hashable
Label = tuple[str, tuple]
Transition = tuple[Label, State]

# TLC exit codes this project relies on.
TLC_OK = 0
TLC_SAFETY_VIOLATION = 12
TLC_LIVENESS_VIOLATION = 13
# TLC exits 13 for every violated PROPERTY, an action property [][A]_v too.
TLC_PROPERTY_VIOLATION = TLC_LIVENESS_VIOLATION
TLC_CONFIG_ERROR = 151


@dataclass(frozen=True)
class LeadsTo:
    """``\\A i \\in instances : P(i) ~> Q(i)``, as TLC expands it."""

    instances: Sequence[object]
    premise: Callable[[object, State], bool]
    goal: Callable[[object, State], bool]


@dataclass(frozen=True)
class Fairness:
    """``WF_vars(A)`` where A is the disjunction of the named actions.

    ``strong`` makes it ``SF_vars(A)``; ``where`` narrows A to the labels it
    accepts (one instance of a parameterised action, e.g. ``Finish(p)``).
    With ``params`` set, A is the one instance ``Action(params)`` of a named
    action: ``\\A l \\in Lanes : WF_vars(Claim(l))`` is one Fairness per l.
    """

    name: str
    actions: frozenset[str]
    strong: bool = False
    where: Callable[[Label], bool] | None = None
    params: tuple | None = None

    def covers(self, label: Label) -> bool:
        return (label[0] in self.actions and (self.where is None or self.where(label))
                and (self.params is None or label[1] == self.params))


@dataclass
class Model:
    """Everything the explorer needs for one (spec, cfg) pair."""

    name: str
    initial_states: Callable[[], Iterable[State]]
    successors: Callable[[State], Iterable[Transition]]
    invariants: Mapping[str, Callable[[State], bool]] = field(default_factory=dict)
    constant_invariants: Mapping[str, Callable[[], bool]] = field(default_factory=dict)
    action_properties: Mapping[str, Callable[[State, State], bool]] = field(
        default_factory=dict
    )
    liveness: Mapping[str, LeadsTo] = field(default_factory=dict)
    fairness: Sequence[Fairness] = ()
    render: Callable[[State], str] = repr


def spec_model(spec: str, config, constants, *, initial_state, successors, invariants,
               liveness, fairness, specifications, render) -> Model:
    """The Model of a mirror whose invariants and liveness take the constants.

    ``invariants`` maps names to ``f(constants, state)``, ``liveness`` to
    ``f(constants) -> LeadsTo``, ``fairness`` names to action sets, and
    ``specifications`` a SPECIFICATION name to the fairness names it has.
    """
    if config.specification not in specifications:
        raise KeyError(f"{spec} mirror has no specification {config.specification!r}")
    c = constants
    return Model(
        name=f"{spec}/{config.path.name}",
        initial_states=lambda: [initial_state(c)],
        successors=lambda state: successors(c, state),
        invariants={n: (lambda s, f=f: f(c, s)) for n, f in invariants.items()},
        liveness={n: f(c) for n, f in liveness.items()},
        fairness=tuple(Fairness(name, fairness[name]) for name in specifications[config.specification]),
        render=render,
    )


@dataclass
class CheckResult:
    """Outcome of one exploration, phrased the way the manifest records it."""

    model: str
    outcome: str  # "pass" or the name of the violated invariant/property
    tlc_exit: int
    distinct_states: int
    depth: int
    trace: list[tuple[Label | None, State]] = field(default_factory=list)
    stutter_at_end: bool = False
    loop_start: int | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


def format_label(label: Label | None) -> str:
    if label is None:
        return "Initial predicate"
    name, params = label
    if not params:
        return name
    return f"{name}({', '.join(repr(p) for p in params)})"


def format_trace(result: CheckResult, render: Callable[[State], str] = repr) -> str:
    lines = [f"Counterexample for {result.outcome} ({len(result.trace)} states):"]
    for index, (label, state) in enumerate(result.trace, start=1):
        marker = ""
        if result.loop_start is not None and index - 1 == result.loop_start:
            marker = "  <- loop starts here"
        lines.append(f"State {index}: <{format_label(label)}>{marker}")
        lines.append(f"  {render(state)}")
    if result.stutter_at_end:
        lines.append("Then stuttering for ever (no fair action is enabled).")
    elif result.loop_start is not None:
        lines.append(f"Then back to state {result.loop_start + 1} for ever.")
    return "\n".join(lines)


def check(
    model: Model,
    invariants: Sequence[str] = (),
    properties: Sequence[str] = (),
    progress: bool = False,
    max_depth: int | None = None,
) -> CheckResult:
    """Explore ``model`` and check the named invariants and properties.

    ``max_depth`` stops expanding states at that depth (the initial states
    have depth 0); it exists to prove that a counterexample is shortest and
    is never used for the manifest counts.

    Names must exist in the model (constant invariants, state invariants,
    action properties or leads-to properties); unknown names raise KeyError,
    mirroring TLC's refusal of an undefined cfg identifier.
    """
    for name in list(invariants) + list(properties):
        known = (
            name in model.invariants
            or name in model.constant_invariants
            or name in model.action_properties
            or name in model.liveness
        )
        if not known:
            raise KeyError(f"{model.name}: no mirror for {name!r}")

    # Start-up: constant-level formulas, evaluated once like TLC does.
    for name in invariants:
        if name in model.constant_invariants and not model.constant_invariants[name]():
            return CheckResult(model.name, name, TLC_CONFIG_ERROR, 0, 0)

    state_checks = [(n, model.invariants[n]) for n in invariants if n in model.invariants]
    action_checks = [
        (n, model.action_properties[n]) for n in properties if n in model.action_properties
    ]
    leads_to = [(n, model.liveness[n]) for n in properties if n in model.liveness]
    keep_graph = bool(leads_to)

    index: dict[State, int] = {}
    states: list[State] = []
    parent: list[int] = []
    via: list[Label | None] = []
    depth_of: list[int] = []
    edges: list[list[tuple[Label, int]]] = []

    def trace_to(i: int) -> list[tuple[Label | None, State]]:
        path = []
        while i >= 0:
            path.append((via[i], states[i]))
            i = parent[i]
        path.reverse()
        return path

    def add(state: State, from_index: int, label: Label | None) -> tuple[int, bool]:
        known_index = index.get(state)
        if known_index is not None:
            return known_index, False
        new_index = len(states)
        index[state] = new_index
        states.append(state)
        parent.append(from_index)
        via.append(label)
        depth_of.append(0 if from_index < 0 else depth_of[from_index] + 1)
        if keep_graph:
            edges.append([])
        return new_index, True

    def violated_invariant(state: State) -> str | None:
        for name, predicate in state_checks:
            if not predicate(state):
                return name
        return None

    queue: deque[int] = deque()
    for state in model.initial_states():
        i, is_new = add(state, -1, None)
        if not is_new:
            continue
        bad = violated_invariant(state)
        if bad:
            return CheckResult(
                model.name, bad, TLC_SAFETY_VIOLATION, len(states), 0, trace_to(i)
            )
        queue.append(i)

    next_report = 100_000
    while queue:
        i = queue.popleft()
        state = states[i]
        if max_depth is not None and depth_of[i] >= max_depth:
            continue
        for label, successor in model.successors(state):
            if successor == state:
                continue  # a stuttering step changes nothing TLC would count
            j, is_new = add(successor, i, label)
            for name, predicate in action_checks:
                if not predicate(state, successor):
                    path = trace_to(i) + [(label, successor)]
                    return CheckResult(
                        model.name, name, TLC_PROPERTY_VIOLATION, len(states),
                        len(path) - 1, path,
                    )
            if keep_graph:
                edges[i].append((label, j))
            if is_new:
                bad = violated_invariant(successor)
                if bad:
                    return CheckResult(
                        model.name, bad, TLC_SAFETY_VIOLATION, len(states),
                        depth_of[j], trace_to(j),
                    )
                queue.append(j)
        if progress and len(states) >= next_report:
            print(f"  .. {model.name}: {len(states)} distinct states, "
                  f"{len(queue)} on queue", file=sys.stderr, flush=True)
            next_report += 100_000

    depth = (max(depth_of) + 1) if depth_of else 0
    for name, prop in leads_to:
        counterexample = _find_fair_lasso(model, prop, states, edges, trace_to, depth_of)
        if counterexample is not None:
            path, loop_start, stutter = counterexample
            return CheckResult(
                model.name, name, TLC_LIVENESS_VIOLATION, len(states), depth,
                path, stutter_at_end=stutter, loop_start=loop_start,
            )
    return CheckResult(model.name, "pass", TLC_OK, len(states), depth)


def _enabled_fair(
    fairness: Sequence[Fairness], out_edges: list[tuple[Label, int]]
) -> list[bool]:
    return [any(f.covers(label) for label, _ in out_edges) for f in fairness]


def _fair_part(component: list[int], edges, fairness: Sequence[Fairness]) -> list[int] | None:
    """A fair cycle inside this SCC (its states), or None (Emerson-Lei).

    Weak fairness of A holds on a cycle through every state and edge of the
    SCC when A is taken inside it or disabled somewhere in it; otherwise no
    cycle inside it is fair.  Strong fairness of A holds when A is taken
    inside it or never enabled in it; otherwise only cycles avoiding the
    states where A is enabled can be fair: drop those, and look again in
    the SCCs of what is left.
    """
    members = set(component)
    if len(component) == 1:
        (only,) = component
        if not any(j == only for _, j in edges[only]):
            return None
    for f in fairness:
        if any(f.covers(label) and j in members for i in component for label, j in edges[i]):
            continue
        enabled = {i for i in component if any(f.covers(label) for label, _ in edges[i])}
        if not enabled:
            continue
        if not f.strong:
            if len(enabled) < len(members):
                continue
            return None
        for sub in _sccs(members - enabled, edges):
            found = _fair_part(sub, edges, fairness)
            if found is not None:
                return found
        return None
    return component


def _find_fair_lasso(model, prop: LeadsTo, states, edges, trace_to, depth_of):
    """Return (trace, loop_start, stutters) of a fair behaviour violating prop."""
    fairness = list(model.fairness)
    for instance in prop.instances:
        # Q is not assumed stable, but P ~> Q is violated by a fair suffix
        # that starts in a P-state and never meets Q; since every state here is
        # reachable, a fair SCC (or fair stuttering state) of the ~Q subgraph
        # that contains a P-state witnesses that, and so does one reachable
        # from a P-state through ~Q states.
        not_goal = [not prop.goal(instance, s) for s in states]
        start_set = [
            i for i, s in enumerate(states) if not_goal[i] and prop.premise(instance, s)
        ]
        if not start_set:
            continue
        region = _reachable_within(start_set, edges, not_goal)
        # A state where no fairness-constrained action is enabled may stutter
        # for ever.
        for i in sorted(region, key=lambda k: depth_of[k]):
            if not any(_enabled_fair(fairness, edges[i])):
                return trace_to(i), None, True
        for component in _sccs(region, edges):
            fair = _fair_part(component, edges, fairness)
            if fair is not None:
                entry = min(fair, key=lambda k: depth_of[k])
                path = trace_to(entry)
                return path, len(path) - 1, False
    return None


def _reachable_within(start: list[int], edges, allowed: list[bool]) -> set[int]:
    seen = set(start)
    stack = list(start)
    while stack:
        i = stack.pop()
        for _, j in edges[i]:
            if allowed[j] and j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


def _sccs(region: set[int], edges) -> list[list[int]]:
    """Tarjan's algorithm, iterative, on the subgraph induced by region."""
    index_of: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in region:
        if root in index_of:
            continue
        work = [(root, 0)]
        index_of[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, position = work[-1]
            successors = [j for _, j in edges[node] if j in region]
            if position < len(successors):
                work[-1] = (node, position + 1)
                nxt = successors[position]
                if nxt not in index_of:
                    index_of[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index_of[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
