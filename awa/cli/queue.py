"""``awa queue``: per-queue settings (pause, resume, enqueue shards, DLQ) and ``awa rescue``.

Every action takes one or more queue names; with ``--partitions N`` each name
is a logical queue and the action applies to all N of its physical queues.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from awa.cli.common import add_database_options, open_client, open_database, usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "queue",
        help="queue settings: pause, resume, enqueue shards, dead-letter queue on/off",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("queues", nargs="+", metavar="QUEUE")
        sub.add_argument("--partitions", "-p", type=int, default=1, metavar="N",
                         help="each QUEUE is a logical queue with N partitions: act on all of them")
        return sub

    create_help = ("also act on queues that do not exist yet (never enqueued to, not a partition of a "
                   "registered logical queue), creating them; without it such a queue is an error")
    pause = action("pause", "stop handing out jobs from these queues (enqueue still works)")
    pause.add_argument("--create", action="store_true", help=create_help)
    add_database_options(pause)
    pause.set_defaults(func=run, apply=lambda c, q, a: c.pause_queue(q, create=True), done="paused", known=True)

    resume = action("resume", "hand out jobs from these queues again")
    resume.add_argument("--create", action="store_true", help=create_help)
    add_database_options(resume)
    resume.set_defaults(func=run, apply=lambda c, q, a: c.resume_queue(q, create=True), done="resumed", known=True)

    shards = action("shards", "set the number of enqueue shards (1..64) of these queues")
    shards.add_argument("--shards", "-s", type=int, required=True, metavar="S", help="enqueue shards per queue")
    add_database_options(shards)
    shards.set_defaults(func=run, apply=lambda c, q, a: c.set_enqueue_shards(q, a.shards), done="set shards of")

    dlq = action("dlq", "turn the dead-letter queue on or off for these queues")
    dlq.add_argument("state", choices=["on", "off"], help="on: failed jobs move to the DLQ; off: they stay failed")
    add_database_options(dlq)
    dlq.set_defaults(func=run, apply=lambda c, q, a: c.set_queue_dlq(q, a.state == "on"), done="set dlq of")

    width = actions.add_parser(
        "partitions",
        help="show or record the partition count of a logical queue (the registry producers and workers check)",
        description="With N: record that logical queue NAME has N partitions (NAME, NAME__p1 .. NAME__p{N-1}). "
        "Producers (client.partitioned_queue, awa enqueue --partitions) and workers compare their width with it. "
        "Without N: print the recorded count. Recording another count does not move jobs; to change the width of "
        "a queue in use, use `awa queue repartition NAME --to N` (docs/operations.md, Repartitioning).",
    )
    width.add_argument("name", metavar="NAME", help="logical queue")
    width.add_argument("partitions", nargs="?", type=int, metavar="N", help="its number of partitions")
    add_database_options(width)
    width.set_defaults(func=run_partitions)

    from awa.cli.compat import add_queue_actions

    add_queue_actions(actions)  # awa-pg's drain

    from awa.cli.repartition import add_repartition_action

    add_repartition_action(actions)

    rescue = subparsers.add_parser(
        "rescue",
        help="one maintenance pass: rescue stale or overdue running jobs, promote due ones",
        description="Workers do this continuously (their maintenance leader). Run it by hand after all workers "
        "died, to put jobs whose heartbeat went stale back to retryable and make due jobs available.",
    )
    rescue.add_argument("--heartbeat-timeout", type=float, default=90.0, metavar="SECONDS",
                        help="a running job whose heartbeat is older than this is rescued (default 90)")
    add_database_options(rescue)
    rescue.set_defaults(func=run_rescue)


def _physical(queues: list[str], partitions: int) -> list[str]:
    from awa.routing import PartitionedQueue
    from awa.storage.validate import check_queue

    if partitions < 1:
        raise usage_error("--partitions must be >= 1")
    if partitions == 1:  # plain queues: any valid name, a partition's included
        return [check_queue(q, "queue") for q in queues]
    return [q for name in queues for q in PartitionedQueue(name, partitions).physical_queues]


def run(args: argparse.Namespace) -> int:
    targets = _physical(args.queues, args.partitions)
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        if getattr(args, "known", False) and not args.create:
            unknown = [q for q in targets if not client.queue_exists(q)]
            if unknown:  # checked before any change: all or nothing
                raise usage_error(
                    f"unknown queue(s): {', '.join(unknown)} (never enqueued to, not a partition of a registered "
                    f"logical queue); nothing changed; check the name(s), or pass --create to {args.action} them anyway"
                )
        for queue in targets:
            args.apply(client, queue, args)
    print(f"{args.done} {len(targets)} queue(s): {', '.join(targets)}")
    return 0


def run_partitions(args: argparse.Namespace) -> int:
    from awa.cli.stats import stranded

    with open_database(args) as db, open_client(db, max_connections=1) as client:
        if args.partitions is None:
            width = client.queue_partitions(args.name).get(args.name)
            if width is None:
                print(f"no partition count recorded for {args.name}")
                return 1
            print(f"{args.name}: {width} partitions")
            return 0
        before = client.set_queue_partitions(args.name, args.partitions)
        left = stranded(client.queue_stats(), args.name, args.partitions)
    was = "" if before is None else f" (was {before})"
    print(f"{args.name}: {args.partitions} partitions{was}")
    for queue, n in left:
        print(f"warning: {n} unfinished job(s) in {queue}, outside the new width", file=sys.stderr)
    return 0


def run_rescue(args: argparse.Namespace) -> int:
    if args.heartbeat_timeout <= 0:
        raise usage_error("--heartbeat-timeout must be > 0")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        rescued: list[Any] = client.rescue_expired(heartbeat_timeout=args.heartbeat_timeout)
        promoted = client.promote_due()
    outcomes: dict[str, int] = {}
    for _job_id, _lease, outcome in rescued:
        outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1
    detail = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    print(f"rescued {len(rescued)} job(s){' (' + detail + ')' if detail else ''}; promoted {promoted} due job(s)")
    return 0
