"""``awa enqueue``: insert jobs described as JSON lines (stdin or a file).

Two input shapes:

* default: one object per line, ``{"kind": ..., "args": {...}, "ordering_key": ...,
  "queue": ..., "priority": ..., "max_attempts": ..., "run_at": ..., "tags": [...],
  "metadata": {...}, "concurrency_key": ...}``; only ``kind`` is required (or ``--kind``).
* ``--kind K``: every line is the job's ``args`` object; ``--key-field F`` takes
  the ordering key from ``args[F]``.

With ``--partitions N`` the queue is a logical queue split over N partitions
(:class:`awa.routing.PartitionedQueue`): keyed jobs go to the partition of
their key, unkeyed jobs round robin. A line's own ``queue`` names its logical
queue the same way. Integer keys are used as their decimal text.

The whole input is parsed and validated before anything is written; by
default everything is inserted in one transaction (``--commit-every`` trades
that for bounded transactions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from awa.cli.common import CliError, add_database_options, open_client, open_database, progress, usage_error

_ENVELOPE_KEYS = {"kind", "args", "ordering_key", "queue", "priority", "max_attempts", "run_at", "tags", "metadata",
                  "concurrency_key"}


@dataclass
class Line:
    number: int  # 1-based line number in the input, for error messages
    kind: str
    args: dict[str, Any]
    queue: str  # logical queue (== physical queue without --partitions)
    key: str | None
    priority: int
    max_attempts: int
    run_at: dt.datetime | None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    concurrency_key: str | None = None  # per-key concurrency (ADR 0020)

    def batch_params(self) -> tuple:
        """Jobs sharing these go to the database in one COPY call."""
        return (self.kind, self.priority, self.max_attempts, self.run_at, self.tags, json.dumps(self.metadata, sort_keys=True))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="insert jobs from JSON lines (stdin or --file), routed over partitions by key",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--file", "-f", metavar="PATH", help="read JSON lines from PATH instead of stdin ('-' = stdin)")
    parser.add_argument("--queue", "-q", default="default", help="queue (logical queue with --partitions); default: default")
    parser.add_argument("--partitions", "-p", type=int, default=1, metavar="N",
                        help="route over N partitions of the queue (default 1: a plain queue)")
    parser.add_argument("--scheme", default="awa-compat", help="routing scheme: awa-compat (default) or xxh3")
    parser.add_argument("--kind", "-k", help="every line is the args object of a job of this kind")
    parser.add_argument("--key-field", metavar="FIELD", help="with --kind: take the ordering key from args[FIELD]")
    parser.add_argument("--priority", type=int, default=2, help="default priority 1 (highest) .. 4; default 2")
    parser.add_argument("--max-attempts", type=int, default=25, help="default max attempts; default 25")
    parser.add_argument("--batch-size", type=int, default=5000, metavar="N", help="jobs per COPY (default 5000)")
    parser.add_argument("--commit-every", type=int, default=0, metavar="N",
                        help="commit after about every N jobs (default 0: one transaction for everything)")
    parser.add_argument("--print-ids", action="store_true", help="print the id of every job, one per line, in input order")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_database_options(parser)
    parser.set_defaults(func=run)


# -- parsing -----------------------------------------------------------------


def _int_value(value: Any, what: str, number: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise usage_error(f"line {number}: {what} must be an integer, got {json.dumps(value)}")
    return value


def _key_value(value: Any, what: str, number: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise usage_error(f"line {number}: {what} must be a string or an integer, got {json.dumps(value)}")
    return str(value)


def _run_at(value: Any, number: int) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise usage_error(f"line {number}: run_at must be an ISO 8601 string, got {json.dumps(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise usage_error(f"line {number}: run_at {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise usage_error(f"line {number}: run_at {value!r} needs a timezone (e.g. +00:00 or Z)")
    return parsed


def parse_lines(stream: TextIO, args: argparse.Namespace) -> list[Line]:
    lines: list[Line] = []
    for number, raw in enumerate(stream, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise usage_error(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise usage_error(f"line {number}: JSON nested too deep (args nest at most 128 levels)") from None
        if not isinstance(obj, dict):
            raise usage_error(f"line {number}: expected a JSON object, got {type(obj).__name__}")
        lines.append(_from_args(obj, number, args) if args.kind else _from_envelope(obj, number, args))
    return lines


def _from_args(obj: dict[str, Any], number: int, args: argparse.Namespace) -> Line:
    key = None
    if args.key_field:
        if args.key_field not in obj:
            raise usage_error(f"line {number}: --key-field {args.key_field!r} is missing from the args")
        key = _key_value(obj[args.key_field], f"args[{args.key_field!r}]", number)
    return Line(number, args.kind, obj, args.queue, key, args.priority, args.max_attempts, None)


def _from_envelope(obj: dict[str, Any], number: int, args: argparse.Namespace) -> Line:
    unknown = sorted(set(obj) - _ENVELOPE_KEYS)
    if unknown:
        raise usage_error(
            f"line {number}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(_ENVELOPE_KEYS))} "
            "(use --kind K if each line is a job's args)"
        )
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise usage_error(f"line {number}: 'kind' (a non-empty string) is required")
    job_args = obj.get("args", {})
    if not isinstance(job_args, dict):
        raise usage_error(f"line {number}: 'args' must be a JSON object")
    queue = obj.get("queue", args.queue)
    if not isinstance(queue, str) or not queue:
        raise usage_error(f"line {number}: 'queue' must be a non-empty string")
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise usage_error(f"line {number}: 'tags' must be a list of strings")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise usage_error(f"line {number}: 'metadata' must be a JSON object")
    return Line(
        number=number,
        kind=kind,
        args=job_args,
        queue=queue,
        key=_key_value(obj.get("ordering_key"), "ordering_key", number),
        priority=_int_value(obj.get("priority", args.priority), "priority", number),
        max_attempts=_int_value(obj.get("max_attempts", args.max_attempts), "max_attempts", number),
        run_at=_run_at(obj.get("run_at"), number),
        tags=tuple(tags),
        metadata=metadata,
        concurrency_key=_key_value(obj.get("concurrency_key"), "concurrency_key", number),
    )


# -- routing -----------------------------------------------------------------


def route(lines: list[Line], partitions: int, scheme: str) -> list[dict[str, Any]]:
    """Per job ``{"queue": physical queue, "ordering_key": bytes | None}``."""
    from awa.routing import PartitionedQueue

    groups: dict[str, PartitionedQueue] = {}
    routed: list[dict[str, Any]] = []
    unkeyed_index: Counter[str] = Counter()
    for line in lines:
        pq = groups.get(line.queue)
        if pq is None:
            pq = groups[line.queue] = PartitionedQueue(line.queue, partitions, scheme=scheme)
        if line.key is not None:
            routed.append(pq.route_by_key(line.key))
        else:
            routed.append({"queue": pq.queue_for_index(unkeyed_index[line.queue]), "ordering_key": None})
            unkeyed_index[line.queue] += 1
    return routed


# -- command -----------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from awa.routing import routing_scheme

    if args.partitions < 1:
        raise usage_error("--partitions must be >= 1")
    if args.batch_size < 1:
        raise usage_error("--batch-size must be >= 1")
    if args.commit_every < 0:
        raise usage_error("--commit-every must be >= 0")
    if args.key_field and not args.kind:
        raise usage_error("--key-field needs --kind (in the default line shape, use the 'ordering_key' field)")
    scheme = routing_scheme(args.scheme)  # ValidationError -> exit 2
    if scheme.verification_only:
        raise usage_error(f"routing scheme {scheme.name!r} exists only to demonstrate a defect; use awa-compat or xxh3")

    if args.file and args.file != "-":
        try:
            with open(args.file, encoding="utf-8") as stream:
                lines = parse_lines(stream, args)
        except OSError as exc:
            raise usage_error(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        if sys.stdin.isatty():
            progress("reading JSON lines from stdin (Ctrl-D to finish) ...")
        lines = parse_lines(sys.stdin, args)
    routed = route(lines, args.partitions, scheme.name)

    with open_database(args) as db, open_client(db, max_connections=1) as client:
        logical = sorted({line.queue for line in lines})
        _check_widths(client, logical, args.partitions)
        ids = _insert(client, lines, routed, args)
        if args.partitions > 1:
            for queue in logical:  # the first producer records the width
                client.register_partitions(queue, args.partitions)

    per_queue = Counter(r["queue"] for r in routed)
    if args.print_ids:
        sys.stdout.write("".join(f"{i}\n" for i in ids))
    elif args.json:
        print(json.dumps({"enqueued": len(lines), "queues": dict(sorted(per_queue.items()))}))
    else:
        print(f"enqueued {len(lines)} job(s)")
        for queue, count in sorted(per_queue.items()):
            print(f"  {queue}: {count}")
    return 0


def _check_widths(client: Any, logical: list[str], partitions: int) -> None:
    """Refuse a width other than the registered one (nothing is written); warn
    when a registered partitioned queue is written to as a plain queue."""
    from awa.errors import PartitionCountMismatch

    registered = client.queue_partitions()
    for queue in logical:
        width = registered.get(queue)
        if width is None or width == partitions:
            continue
        if partitions == 1:
            progress(f"warning: {queue} is registered with {width} partitions; without --partitions {width} "
                     f"every job goes to its partition 0")
            continue
        raise usage_error(str(PartitionCountMismatch(queue, width, partitions, "--partitions")))


def _chunks(lines: list[Line], size: int):
    """Runs of consecutive lines with equal batch parameters, at most ``size`` long.

    Only *consecutive* lines are grouped so the input order, and with it the
    FIFO order inside each lane, is what the database sees.
    """
    start = 0
    while start < len(lines):
        params = lines[start].batch_params()
        end = start + 1
        while end < len(lines) and end - start < size and lines[end].batch_params() == params:
            end += 1
        yield start, end
        start = end


def _chunk_kwargs(lines: list[Line], routed: list[dict[str, Any]], start: int, end: int) -> tuple[list, dict]:
    first = lines[start]
    jobs = [line.args for line in lines[start:end]]
    opts = [{"queue": r["queue"], "ordering_key": r["ordering_key"]} for r in routed[start:end]]
    for entry, line in zip(opts, lines[start:end]):
        if line.concurrency_key is not None:
            entry["concurrency_key"] = line.concurrency_key
    common = dict(
        kind=first.kind,
        queue=opts[0]["queue"],
        priority=first.priority,
        max_attempts=first.max_attempts,
        run_at=first.run_at,
        tags=list(first.tags),
        metadata=first.metadata,
        opts=opts,
    )
    return jobs, common


def _validate_all(lines: list[Line], routed: list[dict[str, Any]], chunks: list[tuple[int, int]]) -> None:
    """Run the client's own validation on every chunk before anything is written.

    Without it a bad line late in the input would be found only after earlier
    chunks were sent (committed, with --commit-every; or rolled back, having
    reserved job ids and queue rows' sequences).
    """
    from awa.storage.batch import prepare
    from awa.storage.keys import split_concurrency_keys

    for start, end in chunks:
        jobs, common = _chunk_kwargs(lines, routed, start, end)
        try:
            common["opts"], _ = split_concurrency_keys(common["opts"], len(jobs))
            prepare(jobs, ordering_key=None, **common)
        except ValueError as exc:
            raise usage_error(f"line {lines[start].number}..{lines[end - 1].number}: {exc}") from None


def _insert(client: Any, lines: list[Line], routed: list[dict[str, Any]], args: argparse.Namespace) -> list[int]:
    ids: list[int] = []
    total = len(lines)
    done = committed = 0
    show_progress = total > args.batch_size
    chunks = list(_chunks(lines, args.batch_size))
    _validate_all(lines, routed, chunks)  # a bad line anywhere: nothing written, no id reserved
    with client.connection() as conn:
        tx = conn.transaction()
        tx.__enter__()
        try:
            for start, end in chunks:
                jobs, common = _chunk_kwargs(lines, routed, start, end)
                try:
                    if args.print_ids:
                        ids.extend(job.id for job in client.insert_many_copy(jobs, conn=conn, **common))
                    else:
                        client.enqueue_many_copy(jobs, conn=conn, **common)
                except ValueError as exc:  # ValidationError: name the input lines
                    raise usage_error(f"line {lines[start].number}..{lines[end - 1].number}: {exc}") from None
                done = end
                if args.commit_every and done - committed >= args.commit_every:
                    tx.__exit__(None, None, None)
                    committed = done
                    tx = conn.transaction()
                    tx.__enter__()
                if show_progress:
                    progress(f"  {done}/{total} jobs sent")
        except BaseException as exc:
            tx.__exit__(type(exc), exc, exc.__traceback__)
            if committed:
                progress(f"{committed} job(s) were committed before the failure; the rest were rolled back")
            raise
        tx.__exit__(None, None, None)
    return ids
