"""Reader for the subset of TLC ``.cfg`` syntax used by ``specs/*.cfg``.

The mirrors take their constants, specification name, invariants and
properties from the same ``.cfg`` file TLC reads, so a config edit cannot
silently desynchronise the Python explorer from TLC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_SECTION_WORDS = {
    "CONSTANT": "constants",
    "CONSTANTS": "constants",
    "SPECIFICATION": "specification",
    "INVARIANT": "invariants",
    "INVARIANTS": "invariants",
    "PROPERTY": "properties",
    "PROPERTIES": "properties",
    "CHECK_DEADLOCK": "check_deadlock",
    "INIT": "init",
    "NEXT": "next",
    "SYMMETRY": "symmetry",
    "CONSTRAINT": "constraints",
    "CONSTRAINTS": "constraints",
}

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$")
_OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*<-\s*([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class ModelConfig:
    """What one ``.cfg`` file asks TLC to check."""

    path: Path
    constants: dict[str, object] = field(default_factory=dict)
    specification: str | None = None
    invariants: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    check_deadlock: bool = True
    symmetry: str | None = None
    constraints: list[str] = field(default_factory=list)
    #: definition overrides ``Name <- Other`` (TLC swaps the operator Name
    #: for Other everywhere); the mirrors switch the matching behaviour.
    overrides: dict[str, str] = field(default_factory=dict)


def _parse_value(text: str) -> object:
    text = text.strip()
    if text == "TRUE":
        return True
    if text == "FALSE":
        return False
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    raise ValueError(f"unsupported constant value in cfg: {text!r}")


def _strip_comment(line: str) -> str:
    # `\*` starts a line comment; no cfg in this repository puts it in a string.
    index = line.find("\\*")
    return line if index < 0 else line[:index]


def parse_cfg(path: str | Path) -> ModelConfig:
    """Parse a TLC model config file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)
    config = ModelConfig(path=path)
    section: str | None = None
    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        if not line:
            continue
        words = line.split()
        head = words[0]
        if head in _SECTION_WORDS:
            section = _SECTION_WORDS[head]
            rest = line[len(head):].strip()
            if not rest:
                continue
            line = rest
        if section == "constants" and _OVERRIDE.match(line):
            match = _OVERRIDE.match(line)
            config.overrides[match.group(1)] = match.group(2)
        elif section == "constants":
            match = _ASSIGNMENT.match(line)
            if not match:
                raise ValueError(f"{path}: cannot read constant line {raw!r}")
            config.constants[match.group(1)] = _parse_value(match.group(2))
        elif section == "specification":
            config.specification = line.split()[0]
        elif section == "invariants":
            config.invariants.extend(line.split())
        elif section == "properties":
            config.properties.extend(line.split())
        elif section == "check_deadlock":
            config.check_deadlock = _parse_value(line.split()[0]) is True
        elif section == "symmetry":
            config.symmetry = line.split()[0]
        elif section == "constraints":
            config.constraints.extend(line.split())
        else:
            raise ValueError(f"{path}: unsupported cfg line {raw!r}")
    return config


def switches(config: ModelConfig, known: dict[tuple[str, str], str]) -> set[str]:
    """The mirror switches that the cfg's definition overrides turn on.

    ``known`` maps ``(operator, replacement)`` to a switch name; an override
    the mirror does not know is refused, as TLC refuses an undefined name.
    """
    on: set[str] = set()
    for pair in config.overrides.items():
        if pair not in known:
            raise ValueError(f"{config.path}: the mirror has no counterpart for override {pair[0]} <- {pair[1]}")
        on.add(known[pair])
    return on
