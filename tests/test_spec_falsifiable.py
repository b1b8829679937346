"""Every property a passing model checks is violated by some broken model.

A property that no broken model can violate proves nothing about a defect,
so each invariant/temporal property listed by a passing cfg of specs/ must
be the expected outcome of at least one broken model in specs/models.tsv.
TypeOK is exempt: it states variable domains, and a defect that breaks it
would be reported by the property the defect targets.

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
EXEMPT = {"TypeOK"}


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


def unkilled(checked: dict[str, set[str]], kills: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        spec: names - kills.get(spec, set()) - EXEMPT
        for spec, names in checked.items()
        if names - kills.get(spec, set()) - EXEMPT
    }


def test_every_checked_property_has_a_killing_model() -> None:
    missing = unkilled(checked_by_passing_models(), killed())
    assert not missing, f"properties no broken model violates: {missing}"


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
