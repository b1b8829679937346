"""The repartitioning model (specs/PartitionedQueueRepartition.tla, ADR 0024).

The manifest tests check outcomes and counts; these check that the model says
what the ADR says: the gcd source rule of the brief's examples, the shape of
the counterexamples, and that the chained lift clause is what keeps a key
that moves twice in order.
"""

from __future__ import annotations

import pytest

from verification.mirrors import repartition
from verification.mirrors.cfg import parse_cfg
from verification.mirrors.explore import check
from verification.mirrors.manifest import SPECS_DIR, load_manifest
from verification.mirrors.registry import check_entry

pytestmark = pytest.mark.specs

MANIFEST = {e.cfg: e for e in load_manifest()}


def _constants(*widths: int) -> repartition.RepartitionConstants:
    padded = (widths + (widths[-1],) * 3)[:3]
    return repartition.RepartitionConstants(padded, (1, 2), 2, 0)


def test_sources_follow_the_gcd_rule_of_the_brief() -> None:
    grow = _constants(4, 8)
    assert {l: set(grow.sources(2, l)) for l in range(8)} == {
        0: set(), 1: set(), 2: set(), 3: set(), 4: {0}, 5: {1}, 6: {2}, 7: {3},
    }
    shrink = _constants(8, 4)
    assert {l: set(shrink.sources(2, l)) for l in range(4)} == {0: {4}, 1: {5}, 2: {6}, 3: {7}}
    # Widths that do not divide each other: every other old partition is a source.
    odd = _constants(2, 3)
    assert {l: set(odd.sources(2, l)) for l in range(3)} == {0: {1}, 1: {0}, 2: {0, 1}}


def test_the_brief_lift_rule_lets_a_key_that_moved_twice_overtake() -> None:
    result = check_entry(MANIFEST["PartitionedQueueRepartitionBrokenBriefLift.cfg"])
    assert result.outcome == "PerKeyFIFO"
    names = [label for label, _ in result.trace[1:]]
    assert [n for n, _ in names].count("Change") == 2
    final = result.trace[-1][1]
    # Job 1 (hash 3) still waits in lane 3 of width 4; job 2 went first from lane 0.
    assert final.lane[:2] == (3, 0) and final.outs == (2,)
    assert names[-1] == ("Claim", (0,))


def test_the_chained_clause_is_what_holds_the_fence() -> None:
    """On the trace of the brief's rule, the fixed rule keeps lane 0's fence up."""
    entry = MANIFEST["PartitionedQueueRepartitionBrokenBriefLift.cfg"]
    broken = check_entry(entry)
    config = parse_cfg(SPECS_DIR / entry.cfg)
    fixed = repartition.RepartitionConstants.from_cfg(config)
    fixed = repartition.RepartitionConstants(fixed.widths, fixed.key_hash, fixed.max_jobs,
                                             fixed.max_crashes)
    lift = next(i for i, (label, _) in enumerate(broken.trace)
                if label == ("LiftFence", (3, 0)))
    before = broken.trace[lift - 1][1]
    assert repartition.lift_fence(fixed, before, 3, 0) is None
    assert repartition.lift_fence(
        repartition.RepartitionConstants.from_cfg(config), before, 3, 0) is not None


def test_naive_counterexample_is_a_moved_key_served_from_its_new_lane() -> None:
    result = check_entry(MANIFEST["PartitionedQueueRepartitionBrokenNaive.cfg"])
    names = [label[0] for label, _ in result.trace[1:]]
    assert names == ["Begin", "Insert", "Change", "Begin", "Insert", "Claim"]


def test_stale_producer_inserts_after_the_change_with_the_width_it_read() -> None:
    result = check_entry(MANIFEST["PartitionedQueueRepartitionBrokenStaleProducer.cfg"])
    names = [label[0] for label, _ in result.trace[1:]]
    assert names[:3] == ["Begin", "Change", "Insert"]
    after_insert = result.trace[3][1]
    assert after_insert.epoch == 2 and after_insert.lane[0] == 0  # routed with width 2


def test_claim_fairness_is_needed() -> None:
    """Without WF on the lanes' claims the liveness property fails (it has teeth)."""
    entry = MANIFEST["PartitionedQueueRepartitionTwoMoves.cfg"]
    config = parse_cfg(SPECS_DIR / entry.cfg)
    model = repartition.build_model(config)
    assert check(model, config.invariants, config.properties).outcome == "pass"
    model.fairness = tuple(f for f in model.fairness if "Claim" not in f.actions)
    result = check(model, config.invariants, config.properties)
    assert result.outcome == "EveryJobHandedOut" and result.tlc_exit == 13


def test_fairness_on_one_instance_of_an_action() -> None:
    """WF on Go(1) alone does not force Go(2); WF on Go(2) does."""
    from verification.mirrors.explore import Fairness, LeadsTo, Model

    # 0 -Go(1)-> 1 -Go(1)-> 0 for ever; Go(2) from either reaches the goal 2.
    edges = {0: [(("Go", (1,)), 1), (("Go", (2,)), 2)], 1: [(("Go", (1,)), 0), (("Go", (2,)), 2)]}

    def toy(*fair_params: int) -> Model:
        return Model(
            name="toy",
            initial_states=lambda: [0],
            successors=lambda s: edges.get(s, []),
            liveness={"Reach": LeadsTo((None,), lambda _i, s: True, lambda _i, s: s == 2)},
            fairness=tuple(Fairness(f"Go({p})", frozenset({"Go"}), params=(p,)) for p in fair_params),
        )

    assert check(toy(1), [], ["Reach"]).outcome == "Reach"
    assert check(toy(2), [], ["Reach"]).outcome == "pass"
    # Without params the fairness is on the disjunction, which Go(1) satisfies.
    disjunction = toy()
    disjunction.fairness = (Fairness("Go", frozenset({"Go"})),)
    assert check(disjunction, [], ["Reach"]).outcome == "Reach"
