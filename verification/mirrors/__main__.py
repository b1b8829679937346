"""``python -m verification.mirrors check [--quick] [--no-trace] [SPEC/CFG ...]``.

Explores every model of ``specs/models.tsv`` with its Python mirror and
prints one line per model; exits 1 when any outcome or distinct-state count
differs from the manifest.  ``--quick`` leaves out the models marked
``slow`` (minutes in Python), printing a SKIP line for each.

``python -m verification.mirrors killers`` prints a Markdown table with one
row per property a passing model checks and the broken models that kill it
(exit 1 when one has none); it reads the manifest and the cfgs, no model runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from verification.mirrors.explore import format_trace
from verification.mirrors.falsifiable import checked_by_passing_models, killed, killers_table, unkilled
from verification.mirrors.manifest import load_manifest
from verification.mirrors.registry import build, check_entry, matches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verification.mirrors")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("check", help="explore models and compare with the manifest")
    run.add_argument("models", nargs="*", help="SPEC/CFG keys or cfg names (default: all)")
    run.add_argument("--quick", action="store_true", help="leave out models marked slow")
    run.add_argument("--all", action="store_true", help="(default) every model, slow ones included")
    run.add_argument("--no-trace", action="store_true",
                     help="do not print the shortest counterexample of broken models")
    sub.add_parser("killers", help="table of the broken models that kill each checked property")
    args = parser.parse_args(argv)

    entries = load_manifest()
    if args.command == "killers":
        print(killers_table(entries))
        return 1 if unkilled(checked_by_passing_models(entries), killed(entries)) else 0
    if args.models:
        wanted = set(args.models)
        entries = [e for e in entries if e.key in wanted or e.cfg in wanted]
        if not entries:
            print(f"no manifest entry matches {sorted(wanted)}", file=sys.stderr)
            return 2
    elif args.quick and not args.all:
        for entry in entries:
            if entry.mirror == "slow":
                print(f"SKIP {entry.key} (marked slow; run without --quick)")
        entries = [e for e in entries if e.mirror != "slow"]

    failures = 0
    for n, entry in enumerate(entries, start=1):
        started = time.monotonic()
        result = check_entry(entry, progress=True)
        elapsed = time.monotonic() - started
        ok = matches(entry, result)
        failures += not ok
        states = result.distinct_states if result.passed else "-"
        trace = f" trace={len(result.trace)}" if result.trace else ""
        print(
            f"[{n}/{len(entries)}] {'PASS' if ok else 'FAIL'} {entry.key} "
            f"expected={entry.expected} got={result.outcome} "
            f"exit={result.tlc_exit} states={states}{trace} ({elapsed:.1f}s)",
            flush=True,
        )
        if result.trace and (not args.no_trace or not ok):
            model, _, _ = build(entry)
            print(format_trace(result, model.render), flush=True)
    print(f"{len(entries) - failures}/{len(entries)} models match specs/models.tsv")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
