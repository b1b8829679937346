"""Every spec parses, and every name a .cfg uses exists in its spec and mirror."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import tla

from verification.mirrors.cfg import parse_cfg
from verification.mirrors.manifest import SPECS_DIR, load_manifest
from verification.mirrors.registry import BROKEN_MODULES, MIRRORS, base_spec, mirror_names

pytestmark = pytest.mark.specs

TLA_FILES = sorted(SPECS_DIR.glob("*.tla"))
CFG_FILES = sorted(SPECS_DIR.glob("*.cfg"))
MANIFEST = load_manifest()


@functools.lru_cache(maxsize=None)
def module_of(path: Path):
    # The pure-Python parser takes seconds per spec; parse each file once.
    return tla.parse(path.read_text(encoding="utf-8"))


def _extends(path: Path) -> list[Path]:
    names = [getattr(n, "operator", n) for n in (module_of(path).extendees or [])]
    return [SPECS_DIR / f"{n}.tla" for n in names if (SPECS_DIR / f"{n}.tla").is_file()]


def defined_operators(path: Path) -> set[str]:
    """Operators of the module and of the specs/ modules it EXTENDS."""
    own = {
        unit.name
        for unit in module_of(path).units
        if type(unit).__name__ == "OperatorDefinition"
    }
    for parent in _extends(path):
        own |= defined_operators(parent)
    return own


def declared(path: Path, kind: str) -> set[str]:
    names: set[str] = set()
    for parent in _extends(path):
        names |= declared(parent, kind)
    for unit in module_of(path).units:
        if type(unit).__name__ == kind:
            for item in unit.names:
                if isinstance(item, str):
                    names.add(item)
                else:  # CONSTANTS hold OperatorApplication nodes, VARIABLES plain names
                    names.add(getattr(item, "operator", None) or getattr(item, "name"))
    return names


def test_there_are_specs_and_configs() -> None:
    assert {p.stem for p in TLA_FILES} >= {"PartitionedQueueRouting", "PartitionedQueueLifecycle"}
    assert len(CFG_FILES) >= 4


@pytest.mark.parametrize("path", TLA_FILES, ids=lambda p: p.name)
def test_spec_parses_with_the_tla_package(path: Path) -> None:
    module = module_of(path)
    assert module.name == path.stem, "module name must match the file name (TLC needs it)"
    assert defined_operators(path), f"{path.name} defines no operator"


def test_a_broken_spec_does_not_parse() -> None:
    # Guards the test above: the parser must reject garbage, not accept anything.
    with pytest.raises(ValueError):
        tla.parse("---- MODULE Broken ----\nFoo == {1, 2\n====\n")


def test_every_cfg_file_is_in_the_manifest_and_every_entry_exists() -> None:
    listed = {entry.cfg for entry in MANIFEST}
    assert {p.name for p in CFG_FILES} == listed
    for entry in MANIFEST:
        assert entry.tla_path.is_file(), entry.key
        assert entry.cfg_path.is_file(), entry.key
        assert base_spec(entry.spec) in MIRRORS, f"{entry.spec} has no Python mirror"
        assert entry.expected == "pass" or entry.tlc_exit != 0
        if entry.expected == "pass":
            assert entry.tlc_exit == 0 and entry.distinct_states, entry.key
        else:
            assert entry.distinct_states is None, f"{entry.key}: counts only for passing models"


def test_every_spec_has_a_correct_and_a_broken_config() -> None:
    for spec in MIRRORS:
        outcomes = [e.expected for e in MANIFEST if base_spec(e.spec) == spec]
        assert "pass" in outcomes, spec
        assert any(o != "pass" for o in outcomes), spec


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e.cfg)
def test_cfg_names_are_defined_in_the_spec_and_mirrored(entry) -> None:
    config = parse_cfg(entry.cfg_path)
    operators = defined_operators(entry.tla_path)
    constants = declared(entry.tla_path, "Constants")
    mirrored = mirror_names(base_spec(entry.spec))
    assert config.specification in operators
    assert config.specification in MIRRORS[base_spec(entry.spec)].SPECIFICATIONS
    for name, replacement in config.overrides.items():
        assert {name, replacement} <= operators, f"{entry.cfg}: override {name} <- {replacement}"
        assert entry.spec in BROKEN_MODULES, f"{entry.cfg}: overrides belong to a broken module"
    assert set(config.constants) == constants, "cfg must give every CONSTANT, and only those"
    assert config.invariants, f"{entry.cfg} checks no invariant"
    for name in config.invariants + config.properties:
        assert name in operators, f"{entry.cfg}: {name} is not defined in {entry.spec}.tla"
        assert name in mirrored, f"{entry.cfg}: {name} has no Python mirror counterpart"
    if entry.expected != "pass":
        assert entry.expected in config.invariants + config.properties, (
            f"{entry.cfg}: expected failure {entry.expected} is not checked by the cfg"
        )


@pytest.mark.parametrize("spec", sorted(MIRRORS))
def test_every_spec_invariant_and_property_has_a_mirror(spec: str) -> None:
    """Names used by any cfg of a spec, and operators that look like one."""
    path = SPECS_DIR / f"{spec}.tla"
    mirrored = mirror_names(spec)
    used: set[str] = set()
    for entry in MANIFEST:
        if base_spec(entry.spec) == spec:
            config = parse_cfg(entry.cfg_path)
            used.update(config.invariants + config.properties)
    assert used <= mirrored
    # Mirror tables must not name operators the spec does not define.
    assert mirrored <= defined_operators(path), mirrored - defined_operators(path)


def test_cfg_reader_rejects_unknown_lines(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.cfg"
    bad.write_text("CONSTANTS\n    N = {1, 2}\n")
    with pytest.raises(ValueError):
        parse_cfg(bad)
    odd = tmp_path / "Odd.cfg"
    odd.write_text("FROBNICATE X\n")
    with pytest.raises(ValueError):
        parse_cfg(odd)


def test_tlc_config_syntax_is_plain() -> None:
    # Only constructs the mirror reader understands, so both tools read the same thing.
    allowed = re.compile(
        r"^(\\\*.*|CONSTANTS?|SPECIFICATION \w+|CHECK_DEADLOCK (TRUE|FALSE)|INVARIANTS?|PROPERTY|PROPERTIES|"
        r"\s+\w+( = (-?\d+|TRUE|FALSE|\"[a-z_]+\")| <- \w+)?|)$"
    )
    for path in CFG_FILES:
        for line in path.read_text().splitlines():
            assert allowed.match(line), f"{path.name}: {line!r}"
