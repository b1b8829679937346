"""``awa keys``: per-key concurrency policies (ADR 0020).

A policy governs a logical queue and all its partitions: at most
``max_in_flight`` running jobs per concurrency key, counted by the database.
A job's key is its ``concurrency_key``, else (``--from-ordering-key``) its
ordering key. Lowering a limit while more jobs of a key run leaves it
pending until they finish; claims already admit under it.
"""

from __future__ import annotations

import argparse
import json

from awa.cli.common import add_database_options, open_client, open_database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="per-key concurrency policies: create, set a limit, list, drop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="govern a logical queue (changes an existing policy)")
    create.add_argument("queue", metavar="QUEUE", help="logical queue (its partitions share the policy)")
    create.add_argument("--max-in-flight", "-n", type=int, default=1, metavar="N",
                        help="running jobs per key (default 1: one at a time)")
    create.add_argument("--from-ordering-key", action="store_true",
                        help="a job without a concurrency_key uses its ordering key")
    create.add_argument("--look-ahead", type=int, metavar="W",
                        help="lane numbers a claim examines past a blocked key (default 256)")
    add_database_options(create)
    create.set_defaults(func=run_create)

    limit = actions.add_parser("set", help="change the limit of an existing policy")
    limit.add_argument("queue", metavar="QUEUE")
    limit.add_argument("max_in_flight", type=int, metavar="N")
    add_database_options(limit)
    limit.set_defaults(func=run_set)

    listing = actions.add_parser("list", help="policies with their keys in flight")
    listing.add_argument("queue", nargs="?", metavar="QUEUE")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_database_options(listing)
    listing.set_defaults(func=run_list)

    drop = actions.add_parser("drop", help="stop governing a queue")
    drop.add_argument("queue", metavar="QUEUE")
    add_database_options(drop)
    drop.set_defaults(func=run_drop)


def _describe(p) -> str:
    pending = "" if p.pending_max is None else f" (lowering to {p.pending_max}: waiting for keys to drain)"
    source = "concurrency_key or ordering_key" if p.from_ordering_key else "concurrency_key"
    return (f"{p.name}: max_in_flight {p.max_in_flight}{pending}, key from {source}, look-ahead {p.look_ahead}; "
            f"{p.in_flight} running in {p.keys_in_flight} key(s), at most {p.most_in_flight} per key")


def run_create(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        p = client.create_key_policy(args.queue, args.max_in_flight, from_ordering_key=args.from_ordering_key,
                                     look_ahead=args.look_ahead)
    print(_describe(p))
    return 0


def run_set(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        p = client.set_key_limit(args.queue, args.max_in_flight)
    print(_describe(p))
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        policies = client.key_policies(args.queue)
    if args.json:
        print(json.dumps([{f: getattr(p, f) for f in p.__dataclass_fields__} for p in policies]))
    else:
        for p in policies:
            print(_describe(p))
        if not policies:
            print("no key policies")
    return 0


def run_drop(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        client.drop_key_policy(args.queue)
    print(f"dropped key policy {args.queue}")
    return 0
