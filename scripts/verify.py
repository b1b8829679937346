"""``make verify``: every check there is, then one summary table.

Steps (each runs even when an earlier one failed, so one report shows all):

1. TLC model checks   scripts/run-tlc.sh (SKIPPED, with the reason, when no Java/jar)
2. Spec parsing       every .tla parses; .cfg names exist; MAPPING.md rows; mirror tests
3. Model mirrors      python -m verification.mirrors check (Python BFS == manifest counts)
4. Test suite         pytest -n 2, everything but the state machines
5. State machines     pytest -m machines (Hypothesis against PostgreSQL)

Output of each step streams to the terminal (that is the progress) and to
``.verify/<step>.log``. Exit status: 0 when nothing failed (skips allowed),
1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".verify"
TLC_SKIPPED = 3  # scripts/run-tlc.sh's "no Java or no jar" exit code
SPEC_TESTS = ["tests/test_specs_parse.py", "tests/test_mapping.py", "tests/test_models_mirror.py"]


@dataclass
class Step:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    status: str = "NOT RUN"
    detail: str = ""
    seconds: float = 0.0


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "scripts.run_tests", *args]


def plan(deep: bool, workers: str) -> list[Step]:
    ignore_specs = [f"--ignore={p}" for p in SPEC_TESTS]
    profile = {"HYPOTHESIS_PROFILE": "deep" if deep else os.environ.get("HYPOTHESIS_PROFILE", "ci")}
    # The deep budget runs one state machine for several minutes on 2 cores:
    # past pytest-timeout's 300 s, which is for hung tests, not long searches.
    long = ["--timeout=3600"] if deep else []
    return [
        Step("TLC model checks", ["bash", "scripts/run-tlc.sh"]),
        Step("Spec parsing, MAPPING, mirror tests", _pytest("-q", *SPEC_TESTS)),
        Step("Model mirrors", [sys.executable, "-m", "verification.mirrors", "check"]),
        Step("Test suite", _pytest("-q", "-n", workers, "-m", "not machines", *long, *ignore_specs), profile),
        Step("State machines", _pytest("-q", "-n", workers, "-m", "machines", *long, *ignore_specs), profile),
    ]


_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def summarize(step: Step, output: str, code: int) -> None:
    last_lines = [line for line in output.strip().splitlines() if line.strip()][-3:]
    if step.name == "TLC model checks" and code == TLC_SKIPPED:
        step.status = "SKIPPED"
        skip = next((line for line in output.splitlines() if line.startswith("SKIP")), "no TLC available")
        step.detail = skip.removeprefix("SKIP:").strip()
        return
    step.status = "PASSED" if code == 0 else "FAILED"
    counts = _PYTEST_COUNTS.findall(" ".join(last_lines))
    if counts:
        step.detail = ", ".join(f"{n} {what}" for n, what in counts)
    elif last_lines:
        step.detail = last_lines[-1][:100]
    if code != 0 and not step.detail:
        step.detail = f"exit code {code}"


def run_step(step: Step) -> None:
    LOG_DIR.mkdir(exist_ok=True)
    log_path = LOG_DIR / (re.sub(r"[^a-z0-9]+", "-", step.name.lower()).strip("-") + ".log")
    print(f"\n\033[1m==> {step.name}\033[0m: {' '.join(step.command)}", flush=True)
    started = time.monotonic()
    env = {**os.environ, **step.env}
    lines: list[str] = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(step.command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line)
        code = proc.wait()
    step.seconds = time.monotonic() - started
    summarize(step, "".join(lines), code)


def table(steps: list[Step]) -> str:
    rows = [("Check", "Result", "Time", "Details")]
    rows += [(s.name, s.status, f"{s.seconds:.0f}s", s.detail) for s in steps]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for i, r in enumerate(rows):
        out.append(f"| {r[0]:<{widths[0]}} | {r[1]:<{widths[1]}} | {r[2]:>{widths[2]}} | {r[3]}")
        if i == 0:
            out.append(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|---")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deep", action="store_true", help="long Hypothesis runs (profile 'deep')")
    parser.add_argument("--workers", default=os.environ.get("TEST_WORKERS", "2"), help="pytest-xdist workers")
    args = parser.parse_args(argv)
    steps = plan(args.deep, args.workers)
    for step in steps:
        run_step(step)
    print("\n\033[1mmake verify summary\033[0m")
    print(table(steps))
    failed = [s.name for s in steps if s.status == "FAILED"]
    skipped = [s.name for s in steps if s.status == "SKIPPED"]
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (logs in {LOG_DIR.relative_to(ROOT)}/)")
        return 1
    print("\nAll checks passed" + (f" ({', '.join(skipped)} skipped)" if skipped else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
