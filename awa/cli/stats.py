"""``awa stats``: per-queue counts and the partition x shard grid, once or refreshing."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from typing import Any

from awa.cli import table
from awa.cli.common import add_database_options, open_client, open_database, usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="per-queue counts and a partition x shard table of waiting jobs (--watch refreshes)",
        description="Show job counts per physical queue and, for the selected queues, the jobs waiting in each "
        "enqueue shard (the lanes, summed over priorities). With --queue LOGICAL --partitions N the N physical "
        "queues of a partitioned queue are shown with a total row.",
    )
    parser.add_argument("--queue", "-q", action="append", default=[], metavar="NAME",
                        help="only this queue (repeatable); default: every queue")
    parser.add_argument("--partitions", "-p", type=int, default=None, metavar="N",
                        help="treat each --queue as a logical queue with N partitions (default: the count recorded "
                             "with awa queue partitions, else 1); jobs left in partitions N and above are listed")
    parser.add_argument("--watch", "-w", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                        help="refresh every SECONDS (default 2) until Ctrl-C")
    parser.add_argument("--count", type=int, default=None, metavar="N", help="with --watch: stop after N refreshes")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON (one document per refresh)")
    add_database_options(parser)
    parser.set_defaults(func=run)


def selected_queues(args: argparse.Namespace, registered: dict[str, int] | None = None) -> list[tuple[str, list[str]]] | None:
    """``[(logical, [physical, ...]), ...]`` or None for every queue."""
    if not args.queue:
        return None
    from awa.routing import PartitionedQueue

    def width(name: str) -> int:
        if args.partitions is not None:
            return args.partitions
        return (registered or {}).get(name, 1)

    return [(name, PartitionedQueue(name, width(name)).physical_queues) for name in args.queue]


def stranded(stats: list[Any], logical: str, width: int) -> list[tuple[str, int]]:
    """Physical queues ``logical__pK`` with K >= ``width`` that hold unfinished jobs."""
    import re

    from awa.routing.partitioned_queue import PHYSICAL_QUEUE_SUFFIX

    pattern = re.compile(re.escape(logical + PHYSICAL_QUEUE_SUFFIX) + r"([1-9][0-9]*)")
    out = []
    for stat in stats:
        match = pattern.fullmatch(stat.queue)
        waiting = stat.scheduled + stat.available + stat.running + stat.retryable
        if match and int(match.group(1)) >= width and waiting:
            out.append((stat.queue, waiting))
    return sorted(out, key=lambda item: int(item[0].rsplit(PHYSICAL_QUEUE_SUFFIX, 1)[1]))


def stranded_lines(client: Any, groups: list[tuple[str, list[str]]] | None) -> list[str]:
    """Warnings for jobs outside each selected logical queue's width."""
    if not groups:
        return []
    every = client.queue_stats()
    registered = client.queue_partitions()
    lines = []
    for logical, physical in groups:
        left = stranded(every, logical, len(physical))
        if left:
            total = sum(n for _, n in left)
            names = ", ".join(f"{q} ({n})" for q, n in left)
            recorded = registered.get(logical)
            note = f"; its recorded count is {recorded}" if recorded is not None else ""
            lines.append(f"warning: {total} unfinished job(s) of {logical} sit outside its {len(physical)} "
                         f"partitions: {names}{note}")
    return lines


def collect(client: Any, groups: list[tuple[str, list[str]]] | None) -> list[Any]:
    if groups is None:
        return sorted(client.queue_stats(), key=lambda s: s.queue)
    wanted = [q for _, physical in groups for q in physical]
    by_name = {s.queue: s for s in client.queue_stats() if s.queue in set(wanted)}
    # A queue nobody has written to or configured yet has the default settings
    # and no jobs: show it as such, so every partition of a group has a row.
    return [by_name.get(q) or _empty(q) for q in dict.fromkeys(wanted)]


def _empty(queue: str) -> Any:
    from awa.client import QueueStat

    return QueueStat(queue=queue, scheduled=0, available=0, running=0, retryable=0, completed=0, failed=0,
                     cancelled=0, dead_lettered=0, paused=False, enqueue_shards=1, dlq_enabled=False,
                     oldest_available_age=None, lanes=[])


_COLUMNS = ("queue", "paused", "shards", "scheduled", "available", "running", "retryable",
            "completed", "failed", "cancelled", "dlq", "oldest")


def _row(stat: Any) -> list[Any]:
    return [stat.queue, stat.paused, stat.enqueue_shards, stat.scheduled, stat.available, stat.running,
            stat.retryable, stat.completed, stat.failed, stat.cancelled, stat.dead_lettered,
            table.format_age(stat.oldest_available_age)]


def _total_row(label: str, stats: list[Any]) -> list[Any]:
    ages = [s.oldest_available_age for s in stats if s.oldest_available_age is not None]
    return [label, "", "", *(sum(getattr(s, f) for s in stats) for f in
            ("scheduled", "available", "running", "retryable", "completed", "failed", "cancelled", "dead_lettered")),
            table.format_age(max(ages) if ages else None)]


def render(stats: list[Any], groups: list[tuple[str, list[str]]] | None) -> str:
    if not stats:
        return "no queues yet (nothing enqueued and no queue settings recorded)"
    rows = [_row(s) for s in stats]
    for logical, physical in groups or []:
        members = [s for s in stats if s.queue in physical]
        if len(physical) > 1 and members:
            rows.append(_total_row(f"{logical} (all {len(physical)})", members))
    parts = [table.render(_COLUMNS, rows, right_from=2)]

    width = max(max(s.enqueue_shards for s in stats), 1 + max((l.enqueue_shard for s in stats for l in s.lanes), default=0))
    grid = []
    for s in stats:
        per_shard = [0] * width
        for lane in s.lanes:
            per_shard[lane.enqueue_shard] += lane.available
        cells = [per_shard[i] if i < s.enqueue_shards or per_shard[i] else "." for i in range(width)]
        grid.append([s.queue, *cells, sum(per_shard)])
    headers = ["available by shard", *(f"s{i}" for i in range(width)), "total"]
    parts.append(table.render(headers, grid, right_from=1))
    return "\n\n".join(parts)


def as_json(stats: list[Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return str(value)

    return json.dumps([dataclasses.asdict(s) for s in stats], default=default)


def run(args: argparse.Namespace) -> int:
    if args.partitions is not None and args.partitions < 1:
        raise usage_error("--partitions must be >= 1")
    if args.partitions is not None and args.partitions > 1 and not args.queue:
        raise usage_error("--partitions needs --queue LOGICAL (which queue is partitioned?)")
    if args.watch is not None and args.watch <= 0:
        raise usage_error("--watch interval must be > 0 seconds")
    if args.count is not None and args.count < 1:
        raise usage_error("--count must be >= 1")
    interactive = sys.stdout.isatty() and not args.json

    with open_database(args) as db, open_client(db, max_connections=1) as client:
        groups = selected_queues(args, client.queue_partitions() if args.queue else None)
        refreshes = 0
        while True:
            stats = collect(client, groups)
            if args.json:
                print(as_json(stats), flush=True)
            else:
                if interactive and args.watch is not None:
                    sys.stdout.write("\033[H\033[2J")  # clear the screen between refreshes
                if args.watch is not None:
                    print(f"{dt.datetime.now().strftime('%H:%M:%S')}  every {args.watch:g}s, Ctrl-C to stop\n")
                print(render(stats, groups), flush=True)
                for line in stranded_lines(client, groups):
                    print(line, file=sys.stderr, flush=True)
            refreshes += 1
            if args.watch is None or (args.count is not None and refreshes >= args.count):
                return 0
            if not interactive and not args.json:
                print()
            time.sleep(args.watch)
