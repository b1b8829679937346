"""The routing machine on PostgreSQL: correct design passes, the correlated one is caught."""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from awa.routing import AWA_COMPAT, CORRELATED_VERIFICATION_ONLY
from tests.machines._support import close_machine, machine_settings
from tests.machines.routing_machine import InvariantViolation, routing_machine_class

pytestmark = pytest.mark.machines


def test_routing_machine_holds_every_spec_invariant(database_factory) -> None:
    machine = routing_machine_class(database_factory(migrated=True), AWA_COMPAT)
    try:
        run_state_machine_as_test(machine, settings=machine_settings())
    finally:
        close_machine(machine)


def test_correlated_scheme_is_caught_and_shrunk(database_factory) -> None:
    """The property-based twin of specs/PartitionedQueueRoutingBrokenCorrelated.cfg.

    Same machine, correlated routing: Hypothesis must find a coverage
    violation and shrink it to one queue definition where partitions and
    shard width share a factor (the ADR-031 defect needs gcd > 1).
    """
    machine = routing_machine_class(database_factory(migrated=True), CORRELATED_VERIFICATION_ONLY)
    try:
        with pytest.raises(InvariantViolation) as caught:
            # Few steps per example: the defect shows at the first queue definition,
            # and shrinking re-runs many non-failing examples.
            run_state_machine_as_test(machine, settings=machine_settings(steps=5, database=None, report_multiple_bugs=False))
    finally:
        close_machine(machine)
    failure = caught.value
    print("shrunk counterexample:\n  " + "\n  ".join(failure.steps) + f"\n{failure.invariant_name}: {failure.detail}")
    assert failure.invariant_name == "PartitionShardCoverage"
    assert len(failure.steps) <= 2, failure.steps
    # Shrinking reaches the smallest shape of the defect: 2 partitions, width 2.
    assert failure.steps[0] == "define_queue(partitions=2, shard_plan=[2])", failure.steps
