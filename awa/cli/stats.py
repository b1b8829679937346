"""awa stats (placeholder until the client lands)."""
from __future__ import annotations
import argparse
from awa.cli._common import CliError
def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="(not yet available)")
    p.set_defaults(func=run)
def run(args: argparse.Namespace) -> int:
    raise CliError("awa stats is not available yet")
