"""Every property a passing model checks is violated by some broken model.

A property that no broken model can violate proves nothing about a defect,
so each invariant/temporal property listed by a passing cfg of specs/ must
be the expected outcome of at least one broken model in specs/models.tsv.
TypeOK is no exception: a value leaving its domain (an attempt past
max_attempts, a lease past its length, a negative partition, a mark past
the lane's last seq) is a defect of its own, and a broken model of each spec
is one where TypeOK is what fails.  The tables are computed by
verification/mirrors/falsifiable.py (`python -m verification.mirrors killers`).

A broken model's expected property must not depend on the order of the cfg:
the mirror, run with the cfg's invariants and properties reversed, reports
the same one.
"""

from __future__ import annotations

import pytest

from verification.mirrors.explore import check
from verification.mirrors.falsifiable import checked_by_passing_models, killed, killers_table, unkilled
from verification.mirrors.manifest import load_manifest
from verification.mirrors.registry import build

pytestmark = pytest.mark.specs

MANIFEST = load_manifest()


def test_every_checked_property_has_a_killing_model() -> None:
    missing = unkilled(checked_by_passing_models(), killed())
    assert not missing, f"properties no broken model violates: {missing}"


def test_the_check_fails_when_a_killing_model_is_removed() -> None:
    kills = killed()
    kills["PartitionedQueueLifecycle"] = kills["PartitionedQueueLifecycle"] - {"NoTwoLiveLeases"}
    assert unkilled(checked_by_passing_models(), kills) == {
        "PartitionedQueueLifecycle": {"NoTwoLiveLeases"}
    }


def test_the_killers_table_has_one_row_per_checked_property() -> None:
    rows = killers_table(MANIFEST).splitlines()[2:]
    assert len(rows) == sum(len(names) for names in checked_by_passing_models(MANIFEST).values())
    assert "| PartitionedQueueRepartition | TypeOK | PartitionedQueueRepartitionBrokenMarkAtNextSeq | 12 |" in rows
    assert not [row for row in rows if row.endswith("| none | - |")]


def test_the_killers_table_shows_a_property_left_unkilled() -> None:
    trimmed = [e for e in MANIFEST if e.cfg != "PartitionedQueueRepartitionBrokenMarkAtNextSeq.cfg"]
    assert unkilled(checked_by_passing_models(trimmed), killed(trimmed)) == {
        "PartitionedQueueRepartition": {"TypeOK"}
    }
    assert "| PartitionedQueueRepartition | TypeOK | none | - |" in killers_table(trimmed).splitlines()


BROKEN_CI = [e for e in MANIFEST if e.expected != "pass" and e.mirror == "ci"]


@pytest.mark.parametrize("entry", BROKEN_CI, ids=lambda e: e.cfg)
def test_broken_outcome_does_not_depend_on_cfg_order(entry) -> None:
    model, invariants, properties = build(entry)
    forward = check(model, invariants, properties)
    backward = check(model, list(reversed(invariants)), list(reversed(properties)))
    assert forward.outcome == backward.outcome == entry.expected
    assert forward.tlc_exit == backward.tlc_exit == entry.tlc_exit
