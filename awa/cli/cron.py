"""``awa cron list|pause|resume|delete``: the periodic-job schedules in the database."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json

from cronsim import CronSim

from awa.cli import table
from awa.cli.common import EXIT_FAILURE, add_database_options, open_client, open_database
from awa.worker.cron import zone


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cron",
        help="periodic jobs: list, pause, resume or delete schedules",
        description="Schedules registered with client.periodic(...) and written by a starting worker. "
        "Every worker fires them; each tick gives exactly one job.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every schedule, its last and next tick")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_database_options(listing)
    listing.set_defaults(func=run_list)
    for name, helptext in (
        ("pause", "stop a schedule's automatic fires"),
        ("resume", "fire a paused schedule again (its missed-fire policy decides what the pause missed)"),
        ("delete", "delete a schedule and its fire records (a worker registering it writes it again)"),
    ):
        sub = actions.add_parser(name, help=helptext)
        sub.add_argument("name", help="the schedule's name")
        add_database_options(sub)
        sub.set_defaults(func=run_action, action_name=name)


def next_tick(cron_expr: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    try:
        return next(CronSim(cron_expr, now.astimezone(zone(timezone)))).astimezone(dt.timezone.utc)
    except Exception:  # a definition this version cannot read: show no next tick
        return None


def run_list(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        jobs = client.list_cron_jobs()
    now = dt.datetime.now(dt.timezone.utc)
    if args.json:
        for job in jobs:
            row = dataclasses.asdict(job)
            row["next_fire_at"] = next_tick(job.cron_expr, job.timezone, now)
            print(json.dumps(row, default=str))
        return 0
    if not jobs:
        print("no periodic jobs")
        return 0
    rows = []
    for job in jobs:
        upcoming = None if job.is_paused else next_tick(job.cron_expr, job.timezone, now)
        rows.append([
            job.name, job.cron_expr, job.timezone, job.kind, job.queue, job.missed_fire_policy,
            _when(job.last_enqueued_at), "paused" if job.is_paused else _when(upcoming),
        ])
    print(table.render(["name", "cron", "timezone", "kind", "queue", "missed fires", "last fire", "next fire"],
                       rows, right_from=99))
    return 0


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_action(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        if args.action_name == "pause":
            found = client.pause_cron_job(args.name, "awa cron pause")
        elif args.action_name == "resume":
            found = client.resume_cron_job(args.name)
        else:
            found = client.delete_cron_job(args.name)
    if not found:
        print(f"no periodic job named {args.name!r}")
        return EXIT_FAILURE
    print(f"{args.action_name}d {args.name}" if args.action_name != "pause" else f"paused {args.name}")
    return 0
