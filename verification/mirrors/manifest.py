"""Reader for ``specs/models.tsv``, the list of (spec, cfg) models.

Columns (tab-separated, one header line):

``spec``             module name, ``specs/<spec>.tla``
``cfg``              config file name inside ``specs/``
``expected``         ``pass`` or the invariant/property that must fail
``tlc_exit``         TLC's exit code: 0 ok, 12 safety, 13 liveness, 151 config
``distinct_states``  TLC's distinct-state count for passing models, else ``-``
``mirror``           ``ci`` (explored by the test suite) or ``slow``
``notes``            free text
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
MANIFEST = SPECS_DIR / "models.tsv"
COLUMNS = ("spec", "cfg", "expected", "tlc_exit", "distinct_states", "mirror", "notes")


@dataclass(frozen=True)
class ModelEntry:
    spec: str
    cfg: str
    expected: str
    tlc_exit: int
    distinct_states: int | None
    mirror: str
    notes: str

    @property
    def key(self) -> str:
        return f"{self.spec}/{self.cfg}"

    @property
    def tla_path(self) -> Path:
        return SPECS_DIR / f"{self.spec}.tla"

    @property
    def cfg_path(self) -> Path:
        return SPECS_DIR / self.cfg


def load_manifest(path: Path = MANIFEST) -> list[ModelEntry]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: header must be {COLUMNS}, got {reader.fieldnames}")
        entries = []
        for row in reader:
            states = row["distinct_states"].strip()
            entries.append(
                ModelEntry(
                    spec=row["spec"].strip(),
                    cfg=row["cfg"].strip(),
                    expected=row["expected"].strip(),
                    tlc_exit=int(row["tlc_exit"]),
                    distinct_states=None if states in ("", "-") else int(states),
                    mirror=row["mirror"].strip(),
                    notes=row["notes"].strip(),
                )
            )
    return entries
