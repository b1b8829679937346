"""Every property a passing model checks is violated by some broken model.

A property that no broken model can violate proves nothing about a defect,
so each invariant/temporal property listed by a passing cfg of specs/ must
be the expected outcome of at least one broken model in specs/models.tsv.
TypeOK is no exception: a value leaving its domain (an attempt past
max_attempts, a lease past its length, a negative partition) is a defect of
its own, and a broken model of each spec is one where TypeOK is what fails.

EXEMPT lists the (spec, property) pairs still without such a model, each
with its reason; an exemption that is no longer needed fails the suite.
Today one: PartitionedQueueRepartition's TypeOK, because no existing
override of its broken module moves a value out of its domain and that
module is being changed on another branch.

A broken model's expected property must not depend on the order of the cfg:
the mirror, run with the cfg's invariants and properties reversed, reports
the same one.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from verification.mirrors.cfg import parse_cfg
from verification.mirrors.explore import check
from verification.mirrors.manifest import load_manifest
from verification.mirrors.registry import base_spec, build

pytestmark = pytest.mark.specs

MANIFEST = load_manifest()
EXEMPT: dict[tuple[str, str], str] = {
    ("PartitionedQueueRepartition", "TypeOK"): (
        "no existing override of PartitionedQueueRepartitionBroken.tla moves a value out of "
        "its domain, and that module is being changed on another branch: the TypeOK model "
        "(a new override there) is added with that change"
    ),
}


def checked_by_passing_models() -> dict[str, set[str]]:
    checked: dict[str, set[str]] = defaultdict(set)
    for entry in MANIFEST:
        if entry.expected == "pass":
            config = parse_cfg(entry.cfg_path)
            checked[base_spec(entry.spec)] |= set(config.invariants + config.properties)
    return checked


def killed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for entry in MANIFEST:
        if entry.expected != "pass":
            out[base_spec(entry.spec)].add(entry.expected)
    return out


def exempt(spec: str) -> set[str]:
    return {name for (where, name) in EXEMPT if where == spec}


def unkilled(checked: dict[str, set[str]], kills: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        spec: names - kills.get(spec, set()) - exempt(spec)
        for spec, names in checked.items()
        if names - kills.get(spec, set()) - exempt(spec)
    }


def test_every_checked_property_has_a_killing_model() -> None:
    missing = unkilled(checked_by_passing_models(), killed())
    assert not missing, f"properties no broken model violates: {missing}"


def test_every_exemption_is_still_needed() -> None:
    checked, kills = checked_by_passing_models(), killed()
    for (spec, name), reason in EXEMPT.items():
        assert reason
        assert name in checked.get(spec, set()), f"{spec}: no passing model checks {name}"
        assert name not in kills.get(spec, set()), f"{spec}: {name} is killed, drop the exemption"


def test_the_check_fails_when_a_killing_model_is_removed() -> None:
    kills = killed()
    kills["PartitionedQueueLifecycle"] = kills["PartitionedQueueLifecycle"] - {"NoTwoLiveLeases"}
    assert unkilled(checked_by_passing_models(), kills) == {
        "PartitionedQueueLifecycle": {"NoTwoLiveLeases"}
    }


BROKEN_CI = [e for e in MANIFEST if e.expected != "pass" and e.mirror == "ci"]


@pytest.mark.parametrize("entry", BROKEN_CI, ids=lambda e: e.cfg)
def test_broken_outcome_does_not_depend_on_cfg_order(entry) -> None:
    model, invariants, properties = build(entry)
    forward = check(model, invariants, properties)
    backward = check(model, list(reversed(invariants)), list(reversed(properties)))
    assert forward.outcome == backward.outcome == entry.expected
    assert forward.tlc_exit == backward.tlc_exit == entry.tlc_exit
