"""The package's layers point one way (ADR 0015), and no module imports
another module's private names.

routing -> storage -> worker -> client -> cli; ``awa.errors``, ``awa.version``
and ``awa.db`` are below everything. Imports are read from the source (``ast``), including
the ones inside functions, so a lazy import cannot hide a back edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "awa"
LAYERS = {"errors": 0, "version": 0, "db": 0, "routing": 1, "storage": 2, "worker": 3, "client": 4, "cli": 5, "testing": 5}
TOP = 6  # awa/__init__.py and awa/__main__.py re-export everything


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "awa":
        return None
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    return LAYERS[parts[1]]


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import of an awa module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
    return [(m, names, line) for m, names, line in out if m == "awa" or m.startswith("awa.")]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_subpackage_has_a_layer():
    top_modules = {"errors", "version", "testing"}
    subpackages = {p.relative_to(PACKAGE).parts[0] for p in SOURCES if len(p.relative_to(PACKAGE).parts) > 1}
    assert subpackages | top_modules == set(LAYERS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_names_are_public(path: Path):
    here = _module_name(path)
    own = _layer(here)
    problems = []
    for module, names, line in _imports(path):
        target = _layer(module)
        if target is not None and target > own:
            problems.append(f"line {line}: {here} (layer {own}) imports {module} (layer {target})")
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                problems.append(f"line {line}: {here} imports the private name {module}.{name}")
    assert not problems, "\n".join(problems)


def test_the_layer_check_can_fail(tmp_path: Path):
    """A worker module importing the client, or a private name, is reported."""
    bad = PACKAGE / "worker" / "_layer_probe.py"
    try:
        bad.write_text("from awa.client import Client\nfrom awa.storage.core import _SHARD_RETRIES\n")
        with pytest.raises(AssertionError) as caught:
            test_imports_point_down_and_names_are_public(bad)
    finally:
        bad.unlink()
    assert "imports awa.client (layer 4)" in str(caught.value)
    assert "private name awa.storage.core._SHARD_RETRIES" in str(caught.value)
