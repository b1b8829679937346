"""``awa jobs list|show|cancel|retry``: look at one job or many, act on one by id.

``list`` shows jobs newest first, a page at a time (``--limit``); it ends with
the cursor of the next page (``--cursor C``), so scripts can walk every job
without OFFSET. ``show`` prints one job with its args, attempts and every
error. ``cancel`` stops jobs that have not finished; ``retry`` puts failed or
cancelled jobs back with fresh attempts (dead-lettered ones too: they leave
the dead-letter queue).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from awa.cli import table
from awa.cli.common import EXIT_FAILURE, add_database_options, open_client, open_database, usage_error

_STATES = ("scheduled", "available", "running", "completed", "retryable", "failed", "cancelled")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs", aliases=["job"], help="jobs by id: list, show, cancel, retry (alias: job)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="list jobs newest first, a page at a time")
    listing.add_argument("--state", "-s", choices=_STATES, help="only jobs in this state")
    listing.add_argument("--queue", "-q", help="only jobs of this (physical) queue")
    listing.add_argument("--kind", "-k", help="only jobs of this kind")
    listing.add_argument("--limit", type=int, default=50, help="jobs per page (default 50)")
    listing.add_argument("--cursor", help="start below this cursor (printed at the end of the previous page)")
    listing.add_argument("--json", action="store_true", help="one JSON object per job, then {\"next_cursor\": ...}")
    add_database_options(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one job: args, attempts and every error")
    show.add_argument("id", type=int, metavar="JOB_ID")
    show.add_argument("--json", action="store_true", help="the job as one JSON object")
    add_database_options(show)
    show.set_defaults(func=run_show)

    for name, text, func in (("cancel", "cancel jobs that have not finished", run_cancel),
                             ("retry", "retry failed, cancelled or dead-lettered jobs (attempts reset)", run_retry)):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("ids", nargs="+", type=int, metavar="JOB_ID")
        add_database_options(sub)
        sub.set_defaults(func=func)

    from awa.cli.compat import add_job_actions

    add_job_actions(actions)  # awa-pg's retry-failed, discard, dump


def last_error(job: Any) -> str | None:
    """The last line of the job's latest error (its exception), or None."""
    if not job.errors or not isinstance(job.errors[-1], dict):
        return None
    text = str(job.errors[-1].get("error") or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def job_dict(job: Any, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "queue": job.queue, "state": str(job.state), "priority": job.priority,
        "attempt": job.attempt, "max_attempts": job.max_attempts, "run_at": job.run_at.isoformat(),
        "created_at": job.created_at.isoformat(),
        "finalized_at": job.finalized_at.isoformat() if job.finalized_at else None,
        "last_error": last_error(job),
    }
    if full:
        key = job.ordering_key
        out.update(args=job.args, tags=job.tags, metadata=job.metadata, errors=job.errors, progress=job.progress,
                   ordering_key=None if key is None else key.decode("utf-8", "replace"),
                   attempted_at=job.attempted_at.isoformat() if job.attempted_at else None,
                   enqueue_shard=job.enqueue_shard, run_lease=job.run_lease)
    return out


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise usage_error("--limit must be >= 1")
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        page = client.list_jobs_page(state=args.state, kind=args.kind, queue=args.queue, limit=args.limit,
                                     cursor=args.cursor)
    if args.json:
        for job in page.jobs:
            print(json.dumps(job_dict(job), default=str))
        print(json.dumps({"next_cursor": page.next_cursor}))
        return 0
    if not page.jobs:
        print("no jobs match" if args.cursor is None else "no more jobs")
        return 0
    rows = [[j.id, j.kind, j.queue, str(j.state), f"{j.attempt}/{j.max_attempts}",
             j.run_at.strftime("%Y-%m-%d %H:%M:%S"), (last_error(j) or "")[:70]] for j in page.jobs]
    print(table.render(["id", "kind", "queue", "state", "attempts", "run at", "last error"], rows, right_from=99))
    if page.next_cursor is not None:
        more = " ".join(f"--{k} {v}" for k, v in (("state", args.state), ("queue", args.queue), ("kind", args.kind))
                        if v)
        print(f"\nmore: awa jobs list {more + ' ' if more else ''}--limit {args.limit} --cursor {page.next_cursor}")
    return 0


def _show_text(job: Any, dlq: Any) -> str:
    d = job_dict(job, full=True)
    lines = [f"job {job.id}: {job.kind} on queue {job.queue}"]
    state = d["state"] if dlq is None else f"dead-lettered ({dlq.reason}, at {dlq.dlq_at.isoformat()})"
    for label, value in (("state", state), ("attempts", f"{job.attempt}/{job.max_attempts}"),
                         ("priority", job.priority), ("ordering key", d["ordering_key"]),
                         ("run at", d["run_at"]), ("created at", d["created_at"]),
                         ("last attempt at", d["attempted_at"]), ("finished at", d["finalized_at"]),
                         ("tags", ", ".join(job.tags) or None)):
        if value is not None:
            lines.append(f"  {label + ':':<17}{value}")
    lines.append(f"  {'args:':<17}{json.dumps(job.args, default=str)}")
    if job.metadata:
        lines.append(f"  {'metadata:':<17}{json.dumps(job.metadata, default=str)}")
    if job.progress is not None:
        lines.append(f"  {'progress:':<17}{json.dumps(job.progress, default=str)}")
    lines.append(f"  errors ({len(job.errors)}):")
    for entry in job.errors:
        entry = entry if isinstance(entry, dict) else {"error": entry}
        lines.append(f"    attempt {entry.get('attempt', '?')} at {entry.get('at', '?')}:")
        lines.extend(f"      {line}" for line in str(entry.get("error", "")).splitlines())
    return "\n".join(lines)


def run_show(args: argparse.Namespace) -> int:
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        job = client.find_job(args.id)
        dlq = client.get_dlq_job(args.id) if job is None else None
    if job is None and dlq is None:
        print(f"awa: error: no job {args.id} (never existed, or deleted by retention)", file=sys.stderr)
        return EXIT_FAILURE
    job = job if job is not None else dlq.job
    if args.json:
        out = job_dict(job, full=True)
        if dlq is not None:
            out.update(state="dead_lettered", dlq_reason=dlq.reason, dlq_at=dlq.dlq_at.isoformat())
        print(json.dumps(out, default=str))
    else:
        print(_show_text(job, dlq))
    return 0


def _each(args: argparse.Namespace, act: Any, verb: str) -> int:
    failed = []
    with open_database(args) as db, open_client(db, max_connections=1) as client:
        for job_id in dict.fromkeys(args.ids):
            problem = act(client, job_id)
            if problem is None:
                print(f"{verb} job {job_id}")
            else:
                failed.append(job_id)
                print(f"awa: error: job {job_id}: {problem}", file=sys.stderr)
    return EXIT_FAILURE if failed else 0


def _why_not(client: Any, job_id: int, wanted: str) -> str:
    job = client.find_job(job_id)
    if job is None:
        return "no such job"
    return f"it is {job.state}; only {wanted} jobs can be"


def run_cancel(args: argparse.Namespace) -> int:
    def act(client: Any, job_id: int) -> str | None:
        if client.cancel_job(job_id) is not None:
            return None
        return _why_not(client, job_id, "scheduled, available, running or retryable") + " cancelled"

    return _each(args, act, "cancelled")


def run_retry(args: argparse.Namespace) -> int:
    def act(client: Any, job_id: int) -> str | None:
        if client.retry_job(job_id) is not None or client.retry_from_dlq(job_id) is not None:
            return None
        return _why_not(client, job_id, "failed, cancelled or dead-lettered") + " retried"

    return _each(args, act, "retried")
