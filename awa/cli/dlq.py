"""``awa dlq list|retry|purge``: inspect and act on dead-lettered jobs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from awa.cli import table
from awa.cli.jobs import last_error
from awa.cli.common import EXIT_FAILURE, add_database_options, open_client, open_database, progress, usage_error

_PAGE = 500


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="dead-letter queue: list, retry or purge dead-lettered jobs",
        description="Jobs that exhausted their attempts on a queue with the DLQ enabled are moved to the "
        "dead-letter queue. List them, put them back (attempts reset) or delete them.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list dead-lettered jobs, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_database_options(listing)
    listing.set_defaults(func=run_list)

    retry = actions.add_parser("retry", help="put dead-lettered jobs back into a queue (attempts reset)")
    _selection(retry)
    retry.add_argument("--to-queue", metavar="NAME", help="retry into this queue instead of the original one")
    add_database_options(retry)
    retry.set_defaults(func=run_retry)

    purge = actions.add_parser("purge", help="delete dead-lettered jobs for good")
    _selection(purge)
    purge.add_argument("--yes", action="store_true", help="required with --all: confirm deleting every match")
    add_database_options(purge)
    purge.set_defaults(func=run_purge)

    from awa.cli.compat import add_dlq_actions

    add_dlq_actions(actions)  # awa-pg's depth


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", "-q", help="only jobs from this queue")
    parser.add_argument("--kind", "-k", help="only jobs of this kind")


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=int, metavar="JOB_ID", help="dead-lettered job ids")
    parser.add_argument("--all", action="store_true", help="every dead-lettered job matching --queue/--kind")
    _filters(parser)


def _check_selection(args: argparse.Namespace) -> None:
    if args.ids and args.all:
        raise usage_error("give job ids or --all, not both")
    if not args.ids and not args.all:
        raise usage_error("give one or more job ids, or --all (optionally with --queue/--kind)")
    if args.ids and (args.queue or args.kind):
        raise usage_error("--queue/--kind filter --all; they cannot be combined with explicit ids")


def _entry_dict(entry: Any) -> dict[str, Any]:
    job = entry.job
    return {
        "id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "ordering_key": job.ordering_key.decode("utf-8", "replace") if job.ordering_key is not None else None,
        "reason": entry.reason,
        "dlq_at": entry.dlq_at.isoformat(),
        "args": job.args,
        "last_error": last_error(job),  # the last line: the exception, not "Traceback (most recent call last):"
    }


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise usage_error("--limit must be >= 1")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        entries = client.list_dlq(queue=args.queue, kind=args.kind, limit=args.limit)
        depth = client.dlq_depth(queue=args.queue)
    if args.json:
        for entry in entries:
            print(json.dumps(_entry_dict(entry), default=str))
        return 0
    if not entries:
        print("the dead-letter queue is empty" + (f" for queue {args.queue}" if args.queue else ""))
        return 0
    rows = []
    for entry in entries:
        d = _entry_dict(entry)
        error = (d["last_error"] or "")[:60]
        rows.append([d["id"], d["kind"], d["queue"], f"{d['attempt']}/{d['max_attempts']}",
                     entry.dlq_at.strftime("%Y-%m-%d %H:%M:%S"), d["reason"], error])
    print(table.render(["id", "kind", "queue", "attempts", "dead-lettered at", "reason", "last error"], rows,
                        right_from=99))
    shown = len(entries)
    if depth > shown:
        print(f"\n{shown} of {depth} shown (use --limit)")
    return 0


def _matching_ids(client: Any, args: argparse.Namespace, seen: set[int]) -> list[int]:
    """The next page of ids matching the filters that this run has not handled yet."""
    entries = client.list_dlq(queue=args.queue, kind=args.kind, limit=_PAGE + len(seen))
    return [e.job.id for e in entries if e.job.id not in seen][:_PAGE]


def _each(client: Any, args: argparse.Namespace, action: Any, verb: str) -> int:
    """Apply ``action(id) -> bool`` to the selection; report missing ids; exit 1 if any."""
    done = 0
    missing: list[int] = []
    if args.ids:
        for job_id in dict.fromkeys(args.ids):
            if action(job_id):
                done += 1
            else:
                missing.append(job_id)
    else:
        seen: set[int] = set()
        while True:
            page = _matching_ids(client, args, seen)
            if not page:
                break
            for job_id in page:
                seen.add(job_id)
                if action(job_id):
                    done += 1
                else:
                    missing.append(job_id)  # retried or purged concurrently by someone else
            if done and done % (_PAGE * 4) == 0:
                progress(f"  {done} {verb} so far ...")
    print(f"{verb} {done} job(s)")
    if missing:
        print(f"not in the dead-letter queue: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def run_retry(args: argparse.Namespace) -> int:
    _check_selection(args)
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        return _each(client, args, lambda i: client.retry_from_dlq(i, queue=args.to_queue) is not None, "retried")


def run_purge(args: argparse.Namespace) -> int:
    _check_selection(args)
    if args.all and not args.yes:
        raise usage_error("purge --all deletes every matching job for good; add --yes to confirm")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        return _each(client, args, lambda i: bool(client.purge_dlq_job(i)), "purged")
