"""The fuzz suite's example counts: each process writes its own, the session sums them.

Counts land in ``$AWA_FUZZ_REPORT_DIR`` (default: ``<tmp>/awa-fuzz``) as
``examples-<worker>.json``; the terminal summary prints the total per entry
point and writes ``examples.json`` next to them, to be quoted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # test_cli_helpers, the shared conftest's neighbours


def report_dir() -> Path:
    path = Path(os.environ.get("AWA_FUZZ_REPORT_DIR") or Path(tempfile.gettempdir()) / "awa-fuzz")
    path.mkdir(parents=True, exist_ok=True)
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    if getattr(session.config, "workerinput", None) is None:  # the controller clears old counts
        for old in report_dir().glob("examples-*.json"):
            old.unlink()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if getattr(config, "workerinput", None) is not None:
        return
    totals: dict[str, dict[str, int]] = {}
    for part in report_dir().glob("examples-*.json"):
        for entry, counts in json.loads(part.read_text()).items():
            mine = totals.setdefault(entry, {})
            for outcome, n in counts.items():
                mine[outcome] = mine.get(outcome, 0) + n
    if not totals:
        return
    out = report_dir() / "examples.json"
    out.write_text(json.dumps(dict(sorted(totals.items())), indent=2) + "\n")
    terminalreporter.section("fuzz examples per entry point")
    terminalreporter.write_line(f"{'entry point':<28}{'examples':>9}{'accepted':>10}{'rejected':>10}")
    for entry, counts in sorted(totals.items()):
        terminalreporter.write_line(
            f"{entry:<28}{counts.get('examples', 0):>9}{counts.get('accepted', 0):>10}{counts.get('rejected', 0):>10}"
        )
    terminalreporter.write_line(f"(written to {out})")


@pytest.fixture(scope="session", autouse=True)
def _write_fuzz_counts():
    import fuzz_support

    yield
    fuzz_support.write_counts(report_dir())
