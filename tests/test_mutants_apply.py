"""Every mutant of scripts/mutants.py still applies to the code as it is.

The mutant run takes minutes and is not part of `make test`; a mutant whose
text the code no longer holds would stop that run at once, or, worse, be
edited to match nothing. This reads each edit against the working tree.
"""

from __future__ import annotations

import pytest

from scripts.mutants import MUTANTS, ROOT


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_edits_text_that_occurs_exactly_once(mutant) -> None:
    for rel, old, new in mutant.edits:
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{mutant.name}: {rel} holds {text.count(old)} copies of {old!r}"
        assert old != new, f"{mutant.name}: an edit that changes nothing"


def test_mutant_names_are_unique_and_every_one_names_its_killing_tests() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
    assert all(m.tests for m in MUTANTS)
