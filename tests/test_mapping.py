"""specs/MAPPING.md covers every spec action and invariant, and its references resolve."""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import tla

from verification.mirrors.cfg import parse_cfg
from verification.mirrors.manifest import SPECS_DIR, load_manifest
from verification.mirrors.registry import MIRRORS, base_spec

pytestmark = pytest.mark.specs

ROOT = Path(__file__).resolve().parents[1]
MAPPING = SPECS_DIR / "MAPPING.md"
KINDS = {"init", "spec", "action", "helper", "invariant", "constant", "property"}


@dataclass(frozen=True)
class Row:
    spec: str
    kind: str
    name: str
    mirror: tuple[str, ...]
    implementation: tuple[str, ...]
    tests: tuple[str, ...]


def _refs(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


def mapping_rows(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("Spec", "") or set(cells[0]) <= {"-"}:
            continue
        spec, kind, name, mirror, implementation, tests = cells
        rows.append(Row(spec, kind, name, _refs(mirror), _refs(implementation), _refs(tests)))
    return rows


ROWS = mapping_rows(MAPPING.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def _source_and_module(spec: str):
    text = (SPECS_DIR / f"{spec}.tla").read_text(encoding="utf-8")
    return text, tla.parse(text)


def _definitions(spec: str) -> dict[str, str]:
    """Operator name -> its source text without comments."""
    text, module = _source_and_module(spec)
    lines = text.splitlines()
    found = {}
    for unit in module.units:
        if type(unit).__name__ != "OperatorDefinition":
            continue
        body = "\n".join(lines[unit.start.line: unit.end.line + 1])
        body = re.sub(r"\(\*.*?\*\)", " ", body, flags=re.S)
        body = re.sub(r"\\\*.*", " ", body)
        found[unit.name] = body
    return found


def required_names(spec: str) -> set[str]:
    """Spec names that must have a MAPPING row.

    Actions: operators applied in Next, and every operator with a primed
    variable or UNCHANGED (action fragments).  Invariants/properties: every
    name checked by any cfg of the spec.  Also Init and every SPECIFICATION.
    """
    defs = _definitions(spec)
    names = {"Init"}
    next_body = defs["Next"].split("==", 1)[1]
    names |= {n for n in re.findall(r"\b([A-Z]\w*)\s*\(", next_body) if n in defs}
    for name, body in defs.items():
        rhs = body.split("==", 1)[1] if "==" in body else body
        if name in ("Init", "Next") or name.startswith("Spec"):
            continue
        if re.search(r"\w'", rhs) or "UNCHANGED" in rhs:
            if not rhs.lstrip().startswith("[]"):  # action properties come from cfgs
                names.add(name)
    for entry in load_manifest():
        if base_spec(entry.spec) == spec:
            config = parse_cfg(entry.cfg_path)
            names |= set(config.invariants) | set(config.properties)
            names.add(config.specification)
    return names


def test_mapping_has_rows_for_both_specs() -> None:
    assert {row.spec for row in ROWS} == set(MIRRORS)
    assert all(row.kind in KINDS for row in ROWS), {row.kind for row in ROWS} - KINDS


@pytest.mark.parametrize("spec", sorted(MIRRORS))
def test_every_spec_name_has_a_row(spec: str) -> None:
    mapped = {row.name for row in ROWS if row.spec == spec}
    missing = required_names(spec) - mapped
    assert not missing, f"specs/MAPPING.md has no row for {spec}: {sorted(missing)}"


@pytest.mark.parametrize("spec", sorted(MIRRORS))
def test_every_row_names_a_real_operator(spec: str) -> None:
    defs = _definitions(spec)
    for row in ROWS:
        if row.spec == spec:
            assert row.name in defs, f"MAPPING row {row.name} is not defined in {spec}.tla"


def test_required_names_see_actions_and_invariants() -> None:
    # The detector itself must find what we know is there.
    lifecycle = required_names("PartitionedQueueLifecycle")
    assert {"Claim", "Complete", "Rescue", "Requeue", "NoJobLost", "EveryJobTerminates"} <= lifecycle
    assert "Jobs" not in lifecycle and "Lanes" not in lifecycle
    assert {"Enqueue", "PartitionShardCoverage"} <= required_names("PartitionedQueueRouting")


def test_a_missing_row_is_detected() -> None:
    trimmed = "\n".join(
        line for line in MAPPING.read_text().splitlines() if "| Rescue |" not in line
    )
    mapped = {row.name for row in mapping_rows(trimmed) if row.spec == "PartitionedQueueLifecycle"}
    assert "Rescue" in required_names("PartitionedQueueLifecycle") - mapped


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.spec}.{r.name}")
def test_mirror_references_import(row: Row) -> None:
    assert row.mirror, f"{row.name}: no mirror reference"
    for ref in row.mirror:
        assert ref.startswith("verification.mirrors."), ref
        _resolve(ref)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.spec}.{r.name}")
def test_implementation_references_exist(row: Row) -> None:
    for ref in row.implementation:
        if "/" in ref:
            assert (ROOT / ref).is_file(), f"{row.name}: missing file {ref}"
        elif ref.startswith(("awa.", "verification.")):
            _resolve(ref)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.spec}.{r.name}")
def test_test_references_exist(row: Row) -> None:
    assert row.tests, f"{row.name}: no test reference"
    for ref in row.tests:
        path, _, name = ref.partition("::")
        source = ROOT / path
        assert source.is_file(), f"{row.name}: missing test file {path}"
        assert re.search(rf"^\s*(async\s+)?def {re.escape(name)}\(", source.read_text(), re.M), (
            f"{row.name}: {path} has no test {name}"
        )
