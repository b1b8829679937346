"""``awa queue repartition NAME --to N``: change a logical queue's width online (ADR 0024)."""

from __future__ import annotations

import argparse
from typing import Any

from awa.cli.common import add_database_options, open_client, open_database, usage_error


def add_repartition_action(actions: argparse._SubParsersAction) -> None:
    sub = actions.add_parser(
        "repartition",
        help="change the partition count of a logical queue while producers and workers run",
        description="Change the width of registered logical queue NAME to N, keeping per-key order: jobs of a "
        "key that moves wait until the key's earlier jobs are handed out. Without --to: show the width, its "
        "epoch and every change (finished or still draining). See docs/operations.md, Repartitioning.",
    )
    sub.add_argument("name", metavar="NAME", help="logical queue")
    sub.add_argument("--to", type=int, metavar="N", help="the new number of partitions")
    sub.add_argument("--lock-timeout-ms", type=int, default=2000, metavar="MS",
                     help="how long each try waits for the queue's key (default 2000)")
    sub.add_argument("--attempts", type=int, default=3, help="tries before giving up (default 3)")
    add_database_options(sub)
    sub.set_defaults(func=run_repartition)


def status_lines(status: dict[str, Any]) -> list[str]:
    lines = [f"{status['logical_queue']}: {status['width']} partitions, epoch {status['epoch']}"
             + (", change in progress" if status["in_progress"] else "")]
    for c in status["changes"]:
        state = "draining" if c["finished_at"] is None else f"finished {c['finished_at']:%Y-%m-%d %H:%M:%S}"
        lines.append(f"  epoch {c['epoch']}: {c['old_width']} -> {c['new_width']}, "
                     f"fences up {c['fences_up']}/{c['fences']}, {state}")
    return lines


def run_repartition(args: argparse.Namespace) -> int:
    if args.to is not None and args.to < 1:
        raise usage_error("--to must be >= 1")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        if args.to is not None:
            done = client.repartition(args.name, args.to, lock_timeout_ms=args.lock_timeout_ms,
                                      attempts=args.attempts)
            if done["changed"]:
                print(f"{args.name}: {done['old_width']} -> {done['new_width']} partitions (epoch {done['epoch']})")
            else:
                print(f"{args.name}: already {done['new_width']} partitions")
        client.lift_fences(args.name)
        for line in status_lines(client.repartition_status(args.name)):
            print(line)
    return 0
