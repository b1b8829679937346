"""awa-pg's command names: ``awa job …`` (``job`` is an alias of ``jobs``, with
``retry-failed``, ``discard`` and ``dump``), ``awa queue drain``, ``awa dlq
depth`` and ``awa migrate --version N`` / ``--sql``.

Each ``add_*`` adds actions to the parser of an existing command; the output
lines follow awa-pg's wording, the exit codes this package's (2 for a usage
error, where awa-pg exits 1).
"""

from __future__ import annotations

import argparse

from awa.cli.common import add_database_options, open_client, open_database, usage_error


def add_job_actions(actions: argparse._SubParsersAction) -> None:
    again = actions.add_parser("retry-failed", help="retry every failed job of one kind or one queue")
    again.add_argument("--kind", "-k", help="failed jobs of this kind")
    again.add_argument("--queue", "-q", help="failed jobs of this queue")
    add_database_options(again)
    again.set_defaults(func=run_retry_failed)

    discard = actions.add_parser("discard", help="delete every failed job of a kind")
    discard.add_argument("--kind", "-k", required=True, help="the kind")
    add_database_options(discard)
    discard.set_defaults(func=run_discard)

    dump = actions.add_parser("dump", help="one job as JSON (awa-pg's name for show --json)")
    dump.add_argument("id", type=int, metavar="JOB_ID")
    add_database_options(dump)
    dump.set_defaults(func=run_dump)


def add_queue_actions(actions: argparse._SubParsersAction) -> None:
    drain = actions.add_parser("drain", help="cancel every job of these queues that has not started")
    drain.add_argument("queues", nargs="+", metavar="QUEUE")
    drain.add_argument("--partitions", "-p", type=int, default=1, metavar="N",
                       help="each QUEUE is a logical queue with N partitions: drain all of them")
    add_database_options(drain)
    drain.set_defaults(func=run_drain)


def add_dlq_actions(actions: argparse._SubParsersAction) -> None:
    depth = actions.add_parser("depth", help="how many jobs are dead-lettered (in all, and per queue)")
    depth.add_argument("--queue", "-q", help="only this queue")
    add_database_options(depth)
    depth.set_defaults(func=run_dlq_depth)


def add_migrate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sql", action="store_true", help="print the migration SQL instead of applying it")
    parser.add_argument("--version", type=int, metavar="N", help="print the SQL of migration N (no database needed)")


def print_migration_sql(args: argparse.Namespace) -> bool:
    """Handle ``--sql`` / ``--version``; False when neither was given."""
    from awa.client.functions import current_migration_version, migrations, migrations_range

    if not args.sql and args.version is None:
        return False
    if args.version is not None:
        latest = current_migration_version()
        if not 1 <= args.version <= latest:
            raise usage_error(f"Version {args.version} is out of range. Valid versions: 1..{latest}")
        chosen = migrations_range(args.version - 1, args.version)
    else:
        chosen = migrations()
    for version, name, text in chosen:
        print(f"-- Migration V{version}: {name}\n{text}\n")
    return True


def run_retry_failed(args: argparse.Namespace) -> int:
    if (args.kind is None) == (args.queue is None):
        raise usage_error("Specify exactly one of --kind or --queue")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        outcome = client.retry_failed(kind=args.kind, queue=args.queue)
    print(f"Retried {len(outcome.jobs)} failed jobs")
    return 0


def run_discard(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        count = client.discard_failed(args.kind)
    print(f"Discarded {count} failed jobs of kind '{args.kind}'")
    return 0


def run_dump(args: argparse.Namespace) -> int:
    from awa.cli.jobs import run_show

    args.json = True
    return run_show(args)


def run_drain(args: argparse.Namespace) -> int:
    from awa.routing import PartitionedQueue

    if args.partitions < 1:
        raise usage_error("--partitions must be >= 1")
    targets = [q for name in args.queues for q in PartitionedQueue(name, args.partitions).physical_queues]
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        for queue in targets:
            count = client.drain_queue(queue)
            print(f"Drained {count} jobs from queue '{queue}'")
    return 0


def run_dlq_depth(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        if args.queue:
            print(f"{args.queue}: {client.dlq_depth(queue=args.queue)}")
            return 0
        total = client.dlq_depth()
        by_queue = [(s.queue, s.dead_lettered) for s in client.queue_stats() if s.dead_lettered]
    print(f"Total: {total}")
    for queue, count in by_queue:
        print(f"  {queue}: {count}")
    return 0


__all__ = ["add_job_actions", "add_queue_actions", "add_dlq_actions", "add_migrate_options", "print_migration_sql"]
