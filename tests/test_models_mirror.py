"""The Python mirrors reproduce TLC: same outcomes, same distinct-state counts.

The counts in specs/models.tsv were produced by TLC (scripts/run-tlc.sh); the
mirrors must hit them exactly, and broken configs must fail on the manifest's
invariant with a shortest counterexample.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from verification.mirrors import lifecycle, lifecycle_runs, routing
from verification.mirrors.cfg import parse_cfg
from verification.mirrors.explore import (
    Fairness,
    LeadsTo,
    Model,
    check,
    format_trace,
)
from verification.mirrors.manifest import SPECS_DIR, load_manifest
from verification.mirrors.registry import build, check_entry, matches

pytestmark = pytest.mark.specs

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = load_manifest()
CI_MODELS = [e for e in MANIFEST if e.mirror == "ci"]
SLOW_MODELS = [e for e in MANIFEST if e.mirror == "slow"]


def _replay_is_real(model: Model, trace) -> None:
    """Every step of a trace is a transition the model actually offers."""
    first_label, first_state = trace[0]
    assert first_label is None and first_state in list(model.initial_states())
    for (_, before), (label, after) in zip(trace, trace[1:]):
        assert (label, after) in list(model.successors(before)), label


@pytest.mark.parametrize("entry", CI_MODELS, ids=lambda e: e.cfg)
def test_mirror_matches_manifest(entry) -> None:
    result = check_entry(entry)
    assert result.outcome == entry.expected, format_trace(result)
    assert result.tlc_exit == entry.tlc_exit
    if entry.expected == "pass":
        assert result.distinct_states == entry.distinct_states
    assert matches(entry, result)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("AWA_MODELS_ALL") != "1",
    reason="minutes in Python; set AWA_MODELS_ALL=1 or run `python -m verification.mirrors check`",
)
@pytest.mark.parametrize("entry", SLOW_MODELS, ids=lambda e: e.cfg)
def test_slow_mirror_matches_manifest(entry) -> None:
    result = check_entry(entry)
    assert matches(entry, result), format_trace(result)


BROKEN_SAFETY = [e for e in CI_MODELS if e.tlc_exit == 12]


@pytest.mark.parametrize("entry", BROKEN_SAFETY, ids=lambda e: e.cfg)
def test_broken_model_trace_is_real_and_shortest(entry) -> None:
    model, invariants, properties = build(entry)
    result = check(model, invariants, properties)
    trace = result.trace
    assert len(trace) >= 2
    _replay_is_real(model, trace)
    last = trace[-1][1]
    assert not model.invariants[entry.expected](last)
    for _, earlier in trace[:-1]:
        assert model.invariants[entry.expected](earlier)
    # Shortest: nothing within one step less violates any listed invariant.
    shallower = check(model, invariants, (), max_depth=len(trace) - 2)
    assert shallower.outcome == "pass"
    text = format_trace(result, model.render)
    assert text.count("State ") == len(trace)


def test_routing_counterexample_is_a_partition_pinned_to_one_shard() -> None:
    entry = next(e for e in MANIFEST if e.cfg == "PartitionedQueueRoutingBrokenCorrelatedTrace.cfg")
    result = check_entry(entry)
    labels = [label for label, _ in result.trace[1:]]
    assert [name for name, _ in labels] == ["Enqueue"]
    ((k,),) = (params for _, params in labels)
    c = routing.RoutingConstants(4, 4, 31, 3, routing.CORRELATED)
    # Under correlation every key of partition k % 4 is on shard k % 4.
    assert {routing.shard_for(c, h) for h in c.hashes if routing.partition_for(c, h) == k % 4} == {k % 4}


def test_spread_property_holds_for_the_design_at_other_hash_ranges() -> None:
    """The design keeps KeyedTrafficSpreadsAcrossShards beyond HashMax = P*S-1."""
    for hash_max in (15, 31, 63, 127):
        c = routing.RoutingConstants(4, 4, hash_max, 1, routing.DOMAIN_SEPARATED)
        assert routing.partition_shard_coverage(c)
        for h in c.hashes:
            assert routing.keyed_traffic_spreads_across_shards(c, routing.enqueue(c, (), h))


def test_lease_guard_counterexample_is_the_adr013_race() -> None:
    entry = next(e for e in MANIFEST if e.cfg == "PartitionedQueueLifecycleBrokenNoLeaseGuard.cfg")
    result = check_entry(entry)
    names = [label[0] for label, _ in result.trace[1:]]
    assert names == ["EnqueueKeyed", "Claim", "Expire", "Rescue", "Claim", "Complete"]


def test_liveness_counterexample_ends_in_fair_stuttering() -> None:
    entry = next(e for e in MANIFEST if e.cfg == "PartitionedQueueLifecycleBrokenNoRescueFairness.cfg")
    result = check_entry(entry)
    assert result.stutter_at_end
    names = [label[0] for label, _ in result.trace[1:]]
    assert names[-1] == "Crash"
    final = result.trace[-1][1]
    assert lifecycle.RUNNING in final.status and all(h == lifecycle.IDLE for h in final.holding)


def test_correct_config_counts_change_when_an_action_changes() -> None:
    """The exact-count check has teeth: a one-line deviation moves the count."""
    entry = next(e for e in MANIFEST if e.cfg == "PartitionedQueueLifecycleThreeJobs.cfg")
    config = parse_cfg(entry.cfg_path)
    model = lifecycle.build_model(config)
    c = lifecycle.LifecycleConstants.from_cfg(config)

    def without_crash(state):
        # Without Crash no running job is ever left without a holder.
        return ((label, nxt) for label, nxt in lifecycle.successors(c, state) if label[0] != "Crash")

    model.successors = without_crash
    result = check(model, config.invariants, [])
    assert result.outcome == "pass"
    assert result.distinct_states != entry.distinct_states


# --- explorer unit tests on toy models --------------------------------------


def _toy(edges: dict[int, list[tuple[str, int]]], fairness, goal: set[int]) -> Model:
    return Model(
        name="toy",
        initial_states=lambda: [0],
        successors=lambda s: [((name, ()), t) for name, t in edges.get(s, [])],
        liveness={"Reach": LeadsTo((None,), lambda _i, s: True, lambda _i, s: s in goal)},
        fairness=tuple(Fairness(n, frozenset(a)) for n, a in fairness),
    )


def test_leads_to_fails_on_an_unfair_free_cycle() -> None:
    # 0 <-> 1 loop by "Spin"; "Go" from 1 reaches goal 2 but nothing forces it.
    toy = _toy({0: [("Spin", 1)], 1: [("Spin", 0), ("Go", 2)]}, [], {2})
    result = check(toy, [], ["Reach"])
    assert result.outcome == "Reach" and result.tlc_exit == 13


def test_leads_to_holds_when_the_exit_is_weakly_fair() -> None:
    # Go is enabled only in state 1, so WF(Go) alone does not force it...
    toy = _toy({0: [("Spin", 1)], 1: [("Spin", 0), ("Go", 2)]}, [("F", {"Go"})], {2})
    assert check(toy, [], ["Reach"]).outcome == "Reach"
    # ...but when Go is enabled in every state of the loop it does.
    toy = _toy({0: [("Spin", 1), ("Go", 2)], 1: [("Spin", 0), ("Go", 2)]}, [("F", {"Go"})], {2})
    assert check(toy, [], ["Reach"]).outcome == "pass"


def test_leads_to_fails_on_a_dead_end_without_fair_action() -> None:
    toy = _toy({0: [("Go", 1)]}, [("F", {"Go"})], {2})
    result = check(toy, [], ["Reach"])
    assert result.outcome == "Reach" and result.stutter_at_end


def test_leads_to_under_strong_fairness() -> None:
    # Go is enabled only in state 1 of the loop: strong fairness forces it
    # (weak fairness does not: test_leads_to_holds_when_the_exit_is_weakly_fair).
    toy = _toy({0: [("Spin", 1)], 1: [("Spin", 0), ("Go", 2)]}, [], {2})
    toy.fairness = (Fairness("WF", frozenset({"Spin"})), Fairness("SF", frozenset({"Go"}), strong=True))
    assert check(toy, [], ["Reach"]).outcome == "pass"
    # A cycle that avoids the states where Go is enabled stays fair (0 <-> 1 beside 2).
    toy = _toy({0: [("Spin", 1)], 1: [("Spin", 0), ("Spin", 2)], 2: [("Spin", 1), ("Go", 3)]}, [], {3})
    toy.fairness = (Fairness("WF", frozenset({"Spin"})), Fairness("SF", frozenset({"Go"}), strong=True))
    assert check(toy, [], ["Reach"]).outcome == "Reach"


def test_fairness_of_one_instance_of_an_action() -> None:
    # Go(1) leaves the loop, Go(0) spins; fairness of Go(0) alone does not force Go(1).
    edges = {0: [(("Go", (0,)), 1), (("Go", (1,)), 2)], 1: [(("Go", (0,)), 0), (("Go", (1,)), 2)]}
    toy = Model(name="toy", initial_states=lambda: [0], successors=lambda s: edges.get(s, []),
                liveness={"Reach": LeadsTo((None,), lambda _i, s: True, lambda _i, s: s == 2)})
    for instance, outcome in ((0, "Reach"), (1, "pass")):
        toy.fairness = (Fairness("F", frozenset({"Go"}), where=lambda label, i=instance: label[1] == (i,)),)
        assert check(toy, [], ["Reach"]).outcome == outcome


def test_constant_invariant_fails_at_startup_without_trace() -> None:
    config = parse_cfg(SPECS_DIR / "PartitionedQueueRoutingBrokenCorrelated.cfg")
    result = check(routing.build_model(config), config.invariants, [])
    assert (result.outcome, result.tlc_exit, result.trace) == ("PartitionShardCoverage", 151, [])


def test_unknown_cfg_name_is_refused() -> None:
    config = parse_cfg(SPECS_DIR / "PartitionedQueueRouting.cfg")
    with pytest.raises(KeyError):
        check(routing.build_model(config), ["NoSuchInvariant"], [])


# --- routing mirror details ---------------------------------------------------


def _routing_constants(scheme: str) -> routing.RoutingConstants:
    return routing.RoutingConstants(4, 4, 15, 4, scheme)


def test_domain_separated_abstraction_gives_every_partition_every_shard() -> None:
    c = _routing_constants(routing.DOMAIN_SEPARATED)
    assert routing.partition_shard_coverage(c)
    for p in c.partitions:
        shards = sorted(routing.shard_for(c, h) for h in c.hashes if routing.partition_for(c, h) == p)
        assert shards == [0, 1, 2, 3]
    bad = _routing_constants(routing.CORRELATED)
    assert not routing.partition_shard_coverage(bad)


def test_routing_invariants_reject_hand_made_bad_rows() -> None:
    c = _routing_constants(routing.DOMAIN_SEPARATED)
    state = routing.enqueue(c, routing.initial_state(c), 7)
    assert state is not None and all(f(c, state) for f in routing.STATE_INVARIANTS.values())
    (key, p, s), = state
    moved = ((key, (p + 1) % 4, s),)
    assert not routing.rows_follow_routing(c, moved)
    assert not routing.same_key_same_partition(c, state + moved)
    assert not routing.same_key_same_shard(c, state + ((key, p, (s + 1) % 4),))


# --- lifecycle replay API -----------------------------------------------------

SMALL = lifecycle.LifecycleConstants(
    num_jobs=2, num_partitions=2, num_shards=1, num_keys=1, num_workers=2, max_attempts=2
)


def test_validate_trace_accepts_a_happy_path_with_retry() -> None:
    steps = [
        ("EnqueueKeyed", {"k": 1}),
        ("EnqueueUnkeyed", {"l": (1, 0)}),
        ("Claim", {"w": 1, "j": 1}),
        ("Fail", {"w": 1}),  # attempt 1 of 2: back to its own lane
        ("Claim", (2, 2)),
        ("Expire", (2,)),
        ("Heartbeat", (2,)),  # the live attempt pushes its deadline out again
        ("Complete", (2,)),
        ("Claim", {"w": 1, "j": 1}),
        ("Complete", {"w": 1}),
    ]
    result = lifecycle_runs.validate_trace(steps, SMALL)
    assert result.ok, result.reason
    assert result.final_state.status == (lifecycle.COMPLETED, lifecycle.COMPLETED)
    assert result.final_state.lease == (2, 1)
    assert result.final_state.lane[0] == lifecycle.key_lane(SMALL, 1)


def test_validate_trace_rejects_the_stale_completion() -> None:
    race = [
        ("EnqueueKeyed", (1,)),
        ("Claim", (1, 1)),
        ("Expire", (1,)),
        ("Rescue", (1,)),
        ("Claim", (2, 1)),
        ("Complete", (1,)),
    ]
    guarded = lifecycle_runs.validate_trace(race, SMALL)
    assert not guarded.ok and guarded.failed_step == 5 and "not enabled" in guarded.reason
    ok = lifecycle_runs.validate_trace(race[:-1] + [("DropStale", (1,)), ("Complete", (2,))], SMALL)
    assert ok.ok, ok.reason
    unguarded = lifecycle.LifecycleConstants(2, 2, 1, 1, 2, 2, guarded_finalize=False)
    broken = lifecycle_runs.validate_trace(race, unguarded)
    assert not broken.ok and "StaleAttemptNeverFinalizes" in broken.reason


def test_validate_trace_rejects_out_of_order_claim_and_unknown_action() -> None:
    steps = [("EnqueueKeyed", (1,)), ("EnqueueKeyed", (1,)), ("Claim", (1, 2))]
    result = lifecycle_runs.validate_trace(steps, SMALL)
    assert not result.ok and result.failed_step == 2
    assert not lifecycle_runs.validate_trace([("Teleport", ())], SMALL).ok


def test_abstract_state_from_rows_and_invariants() -> None:
    state = lifecycle_runs.abstract_state(
        SMALL,
        jobs=[{"status": "running", "key": 1, "lane": (0, 0), "seq": 1, "lease": 1, "fresh": True}],
        lanes={(0, 0): (2, 1)},
        holding={1: (1, 1)},
    )
    assert lifecycle.violated_invariants(SMALL, state) == []
    # A ready row left behind the claim head breaks FIFO (and reachability).
    behind = lifecycle_runs.abstract_state(
        SMALL,
        jobs=[{"status": "ready", "key": 1, "lane": (0, 0), "seq": 1},
              {"status": "running", "key": 1, "lane": (0, 0), "seq": 2, "lease": 1, "fresh": True}],
        lanes={(0, 0): (3, 2)},
        holding={1: (2, 1)},
    )
    assert "ClaimOrderFifo" in lifecycle.violated_invariants(SMALL, behind)
    # A second claim of the running row: lease 2 while attempt 1 never ended.
    doubled = state._replace(lease=(2, 0), holding=((1, 1), (1, 2)))
    assert lifecycle.violated_invariants(SMALL, doubled) == ["NoTwoLiveLeases"]


# --- scripts/run-tlc.sh contract ------------------------------------------------


def _run_tlc_script(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TLA2TOOLS_JAR"}
    env.update(env_extra)
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(ROOT / "scripts" / "run-tlc.sh"), *args],
        capture_output=True, text=True, env=env, timeout=600,
    )


def test_run_tlc_skips_with_exit_3_without_a_jar(tmp_path: Path) -> None:
    proc = _run_tlc_script(env_extra={
        "TLA2TOOLS_JAR": str(tmp_path / "missing.jar"),
    })
    assert proc.returncode == 3
    assert proc.stdout.splitlines()[0].startswith("SKIP:")


def test_run_tlc_skips_without_java(tmp_path: Path) -> None:
    # PATH with bash tools but no java.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("dirname", "sed", "cat", "mktemp", "rm"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    proc = _run_tlc_script(env_extra={"PATH": str(bindir)})
    assert proc.returncode == 3
    assert proc.stdout.startswith("SKIP:") and "java" in proc.stdout.splitlines()[0]


def test_run_tlc_usage_errors_exit_2() -> None:
    assert _run_tlc_script("--no-such-flag", env_extra={}).returncode == 2
    assert _run_tlc_script("NoSuchModel.cfg", env_extra={}).returncode == 2


@pytest.mark.skipif(
    not (os.environ.get("TLA2TOOLS_JAR") and shutil.which("java")),
    reason="TLC not available (set TLA2TOOLS_JAR to run TLC from the tests)",
)
def test_tlc_agrees_on_the_quick_broken_models() -> None:
    proc = _run_tlc_script(
        "PartitionedQueueRoutingBrokenCorrelated.cfg",
        "PartitionedQueueRoutingBrokenCorrelatedTrace.cfg",
        "PartitionedQueueLifecycleBrokenNoCursor.cfg",
        env_extra={"TLA2TOOLS_JAR": os.environ["TLA2TOOLS_JAR"]},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\nPASS ") + proc.stdout.startswith("PASS ") == 3


def test_manifest_mismatches_are_reported() -> None:
    """A wrong count, or a broken model that passes, is a mismatch."""
    import dataclasses

    entry = next(e for e in MANIFEST if e.cfg == "PartitionedQueueRoutingBrokenCorrelatedTrace.cfg")
    result = check_entry(entry)
    assert matches(entry, result)
    assert not matches(dataclasses.replace(entry, expected="pass", tlc_exit=0, distinct_states=22), result)
    assert not matches(dataclasses.replace(entry, expected="SameKeySameShard"), result)
    correct = next(e for e in MANIFEST if e.cfg == "PartitionedQueueRouting.cfg")
    passed = check_entry(correct)
    assert matches(correct, passed)
    assert not matches(dataclasses.replace(correct, distinct_states=correct.distinct_states + 1), passed)


# --- leadership mirror details --------------------------------------------------


def test_session_lock_counterexample_is_a_frozen_holder_that_keeps_the_lease() -> None:
    from verification.mirrors import leadership

    entry = next(e for e in MANIFEST if e.cfg == "LeadershipBrokenSessionLock.cfg")
    result = check_entry(entry)
    assert result.outcome == "EveryJobTerminates" and result.stutter_at_end
    final = result.trace[-1][1]
    assert final.mode[final.holder - 1] == leadership.FROZEN and final.left > 0
    assert leadership.DONE not in final.status


def test_leadership_bound_is_tight_and_late_maintenance_is_reachable() -> None:
    """MaintenanceWithinLease cannot be sharpened, and the model does let a
    leader run a checked maintenance statement after its lease moved on."""
    from verification.mirrors import leadership

    config = parse_cfg(SPECS_DIR / "Leadership.cfg")
    c = leadership.LeadershipConstants.from_cfg(config)
    model = leadership.build_model(config)
    model.invariants = {
        "WaitsLessThanALease": lambda s: s.waited < c.lease,
        "NoLateMaintenance": lambda s: not any(
            s.pc[w - 1] == leadership.MAINT and s.holder != w and leadership.live(s, w) for w in c.workers
        ),
    }
    tight = check(model, ["WaitsLessThanALease"], [])
    assert tight.outcome == "WaitsLessThanALease"
    assert [label[0] for label, _ in tight.trace[1:]] == ["Acquire", "Freeze", "Tick", "Tick"]
    late = check(model, ["NoLateMaintenance"], [])
    assert late.outcome == "NoLateMaintenance"
    assert "StartMaintenance" in [label[0] for label, _ in late.trace[1:]]
@pytest.mark.parametrize("cfg", ["ContinuousLoadBrokenIndexOrder.cfg", "ContinuousLoadBrokenMostWork.cfg"])
def test_starving_lane_order_leaves_a_cold_job_waiting_while_the_hot_lane_is_served(cfg) -> None:
    from verification.mirrors.continuous_load import HOT

    entry = next(e for e in MANIFEST if e.cfg == cfg)
    model, invariants, properties = build(entry)
    result = check(model, invariants, properties)
    assert result.outcome == "EveryJobClaimed" and result.loop_start is not None
    _replay_is_real(model, result.trace)
    entry_state = result.trace[result.loop_start][1]
    cold = [p for p in range(len(entry_state.watch)) if p != HOT and entry_state.watch[p] > 0]
    assert cold, model.render(entry_state)
    # The same state under the implementation's random order: a claim may start with the cold lane.
    fair = build(next(e for e in MANIFEST if e.cfg == "ContinuousLoadShared.cfg"))[0]
    state = entry_state
    while state.held[0] == 0:  # handlers return until the claim loop can take slots
        state = next(s for lb, s in fair.successors(state) if lb[0] in ("Finish", "Acquire"))
    orders = [lb[1][1] for lb, _ in fair.successors(state) if lb[0] == "Claim"]
    assert any(order[:1] == (cold[0],) for order in orders), orders
