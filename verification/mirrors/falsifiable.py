"""Which broken models kill each property that a passing model checks.

A property that no broken model violates proves nothing about a defect, so
every invariant and temporal property listed by a passing cfg of a spec must
be the expected outcome of at least one broken model of that spec in
``specs/models.tsv`` (``tests/test_spec_falsifiable.py`` asserts it).  A
broken module (``FooBroken``) counts for the spec it EXTENDS.
"""

from __future__ import annotations

from collections import defaultdict

from verification.mirrors.cfg import parse_cfg
from verification.mirrors.manifest import ModelEntry, load_manifest
from verification.mirrors.registry import base_spec


def checked_by_passing_models(manifest: list[ModelEntry] | None = None) -> dict[str, list[str]]:
    """Spec -> the names its passing cfgs check, in order of first appearance."""
    checked: dict[str, list[str]] = {}
    for entry in load_manifest() if manifest is None else manifest:
        if entry.expected == "pass":
            config = parse_cfg(entry.cfg_path)
            names = checked.setdefault(base_spec(entry.spec), [])
            names += [n for n in config.invariants + config.properties if n not in names]
    return checked


def killers(manifest: list[ModelEntry] | None = None) -> dict[tuple[str, str], list[ModelEntry]]:
    """(spec, property) -> the broken models expected to violate it."""
    out: dict[tuple[str, str], list[ModelEntry]] = defaultdict(list)
    for entry in load_manifest() if manifest is None else manifest:
        if entry.expected != "pass":
            out[(base_spec(entry.spec), entry.expected)].append(entry)
    return dict(out)


def killed(manifest: list[ModelEntry] | None = None) -> dict[str, set[str]]:
    """Spec -> the properties some broken model of it violates."""
    out: dict[str, set[str]] = defaultdict(set)
    for spec, name in killers(manifest):
        out[spec].add(name)
    return dict(out)


def unkilled(checked: dict[str, list[str]], kills: dict[str, set[str]]) -> dict[str, set[str]]:
    """Spec -> the checked properties that no broken model violates."""
    missing = {spec: set(names) - kills.get(spec, set()) for spec, names in checked.items()}
    return {spec: names for spec, names in missing.items() if names}


def killers_table(manifest: list[ModelEntry] | None = None) -> str:
    """Markdown: one row per property a passing model checks, with its killers."""
    by_property = killers(manifest)
    lines = ["| spec | property | killed by | TLC exit |", "|---|---|---|---|"]
    for spec, names in checked_by_passing_models(manifest).items():
        for name in names:
            entries = by_property.get((spec, name), [])
            cfgs = ", ".join(e.cfg.removesuffix(".cfg") for e in entries) or "none"
            exits = ", ".join(str(x) for x in sorted({e.tlc_exit for e in entries})) or "-"
            lines.append(f"| {spec} | {name} | {cfgs} | {exits} |")
    return "\n".join(lines)
