"""``awa bench`` and ``awa verify``: the make targets, from a source checkout only.

Both run a module that lives next to the package in the repository
(``bench/``, ``scripts/verify.py``), not inside the installed package, so
they need the checkout the package was installed from (``pip install -e .``).
Extra arguments are passed through unchanged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from awa.cli._common import CliError

# module to run, file that proves it exists, make target it mirrors
_TARGETS = {
    "verify": ("scripts.verify", Path("scripts") / "verify.py", "make verify"),
    "bench": ("bench", Path("bench") / "__main__.py", "make bench"),
}


def source_root() -> Path:
    """The directory that contains the ``awa`` package (the repository root for an editable install)."""
    import awa

    return Path(awa.__file__).resolve().parent.parent


def register(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="every check (TLC, spec parsing, mirrors, tests, state machines); same as make verify",
        description="Run python -m scripts.verify from the source checkout; arguments are passed through "
        "(e.g. --deep). Needs a source checkout.",
    )
    verify.add_argument("passthrough", nargs=argparse.REMAINDER, help="arguments for scripts.verify")
    verify.set_defaults(func=run, target="verify")

    bench = subparsers.add_parser(
        "bench",
        help="benchmarks with printed figures; same as make bench",
        description="Run python -m bench from the source checkout; arguments are passed through. "
        "Needs a source checkout.",
    )
    bench.add_argument("passthrough", nargs=argparse.REMAINDER, help="arguments for python -m bench")
    bench.set_defaults(func=run, target="bench")


TARGETS = tuple(_TARGETS)


def run(args: argparse.Namespace) -> int:
    return run_target(args.target, list(args.passthrough))


def run_target(target: str, passthrough: list[str]) -> int:
    """Run the target's module with ``passthrough`` unchanged (``--help`` included: its own help)."""
    module, marker, make_target = _TARGETS[target]
    root = source_root()
    if not (root / marker).is_file() or not (root / "pyproject.toml").is_file():
        raise CliError(
            f"awa {target} needs a source checkout of this project ({marker} not found under {root}); "
            f"clone the repository, run 'pip install -e .' in it, then 'awa {target}' or '{make_target}'"
        )
    if passthrough[:1] == ["--"]:
        passthrough = passthrough[1:]
    if any(a in ("-h", "--help") for a in passthrough):
        print(f"awa {target} runs 'python -m {module}' in {root} (same as {make_target}); its options:", flush=True)
    completed = subprocess.run([sys.executable, "-m", module, *passthrough], cwd=root)
    if completed.returncode < 0:  # killed by a signal
        return 128 - completed.returncode
    return completed.returncode
