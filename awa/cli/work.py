"""``awa work``: run workers for handler modules until stopped.

A handler module is an importable Python module with a function
``register(client)`` that declares its handlers on the given client::

    def register(client):
        @client.task("send_email", queue="email")
        def send_email(job):
            ...

``--handlers pkg.module`` calls ``register``; ``--handlers pkg.module:setup``
calls ``setup`` instead. The current directory is importable, as with
``python -m``.

Queues come from flags (``--queue NAME --partitions N --max-workers M``) or
from a TOML/JSON config file (``--config``)::

    handlers = ["myapp.tasks"]
    # global_max_workers = 16          # weighted mode (then use min_workers/weight)

    [[queues]]
    name = "orders"
    partitions = 4                     # orders, orders__p1 .. orders__p3
    max_workers = 2                    # per partition: 8 for the logical queue

    [[queues]]
    name = "invoices"
    partitions = 4
    shared_slots = true                # the 4 partitions share max_workers (ADR 0014)
    max_workers = 8                    # for the logical queue

    [options]                          # runtime options of Client.start()
    poll_interval_ms = 200

Every capacity number is per physical queue, i.e. per partition, except in
``shared_slots`` entries (``--shared-slots``), where it is per logical queue.
SIGTERM or Ctrl-C stop claiming and give running jobs --shutdown-timeout
seconds to finish (exit 0 for SIGTERM or --until-empty, 130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from awa.cli.common import (
    EXIT_INTERRUPTED,
    CliError,
    add_database_options,
    check_database,
    open_database,
    progress,
    usage_error,
)

_QUEUE_KEYS = {"name", "partitions", "shared_slots", "max_workers", "min_workers", "weight", "rate_limit", "claimers",
               "claim_batch_size", "deadline_duration_ms", "priority_aging_interval_ms"}
_CONFIG_KEYS = {"handlers", "queues", "global_max_workers", "shutdown_timeout", "options"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "work",
        help="run workers: import handler modules, serve (partitioned) queues until stopped",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML (.toml) or JSON config file")
    parser.add_argument("--handlers", "-H", action="append", default=[], metavar="MODULE[:FUNC]",
                        help="module whose register(client) declares handlers (repeatable)")
    parser.add_argument("--queue", "-q", action="append", default=[], metavar="NAME",
                        help="serve this (logical) queue (repeatable); default: the queues the handlers declare")
    parser.add_argument("--partitions", "-p", type=int, default=1, metavar="N",
                        help="each --queue has N partitions (default 1)")
    parser.add_argument("--shared-slots", action="store_true",
                        help="the partitions of each --queue share its workers and are claimed together "
                             "(shared_queue_config, ADR 0014); default: each partition has its own")
    parser.add_argument("--max-workers", type=int, default=None, metavar="N",
                        help="concurrent jobs per physical queue, or per logical queue with --shared-slots (default 10)")
    parser.add_argument("--global-max-workers", type=int, default=None, metavar="N",
                        help="weighted mode: one pool of N slots shared by all queues")
    parser.add_argument("--shutdown-timeout", type=float, default=None, metavar="SECONDS",
                        help="how long running jobs may take to finish on shutdown (default 10)")
    parser.add_argument("--until-empty", action="store_true",
                        help="exit (0) once the served queues have no scheduled, available, retryable or running jobs")
    parser.add_argument("--status-every", type=float, default=10.0, metavar="SECONDS",
                        help="print a progress line every SECONDS (0: never; default 10)")
    add_database_options(parser)
    parser.set_defaults(func=run)


# -- configuration -------------------------------------------------------------


def load_config(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise usage_error(f"cannot read config {path}: {exc.strerror}") from None
    try:
        if file.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise usage_error(f"config {path} is not valid {'JSON' if file.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise usage_error(f"config {path} must be a table/object at the top level")
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise usage_error(f"config {path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_CONFIG_KEYS))}")
    return data


def check_queue_entries(entries: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Config entries -> ``start()`` queue configs, checked here so that errors
    name the entry's place in the file. ``start()`` plans a ``partitions``
    entry: one plan per partition, or one shared-slots plan (ADR 0014)."""
    from awa.routing import PartitionedQueue

    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise usage_error(f"{where}: queues[{i}] must be a table/object")
        unknown = sorted(set(entry) - _QUEUE_KEYS)
        if unknown:
            raise usage_error(f"{where}: queues[{i}] has unknown key(s) {', '.join(unknown)}")
        if "name" not in entry:
            raise usage_error(f"{where}: queues[{i}] needs a name")
        config = {**entry, "partitions": entry.get("partitions", 1)}
        PartitionedQueue(config["name"], config["partitions"])  # validates name and count
        if not isinstance(config.get("shared_slots", False), bool):
            raise usage_error(f"{where}: queues[{i}] shared_slots must be true or false")
        if isinstance(config.get("rate_limit"), list):
            config["rate_limit"] = tuple(config["rate_limit"])  # TOML/JSON have no tuples
        out.append(config)
    return out


def plan_from_args(args: argparse.Namespace) -> tuple[list[str], list[dict[str, Any]] | None, int | None, float, dict]:
    """handlers, queue configs (None: infer), global_max_workers, shutdown timeout, runtime options."""
    config = load_config(args.config) if args.config else {}
    where = args.config or "flags"
    handlers = list(config.get("handlers", [])) + list(args.handlers)
    if not all(isinstance(h, str) and h for h in handlers):
        raise usage_error(f"{where}: handlers must be module names")
    if not handlers:
        raise usage_error("no handler modules: pass --handlers MODULE (a module with register(client)) or set "
                          "handlers in --config")

    global_max = args.global_max_workers if args.global_max_workers is not None else config.get("global_max_workers")
    if args.partitions < 1:
        raise usage_error("--partitions must be >= 1")
    if args.queue:
        if args.max_workers is not None and global_max is not None:
            raise usage_error("--max-workers is for hard-reserved mode; with --global-max-workers queues share one pool")
        per_queue = {} if global_max is not None else {"max_workers": args.max_workers or 10}
        if args.shared_slots:
            per_queue["shared_slots"] = True
        flag_entries = [{"name": q, "partitions": args.partitions, **per_queue} for q in args.queue]
        queues = check_queue_entries(list(config.get("queues", [])) + flag_entries, where)
    elif "queues" in config:
        if not isinstance(config["queues"], list):
            raise usage_error(f"{where}: queues must be an array of tables")
        queues = check_queue_entries(config["queues"], where)
    else:
        if args.partitions != 1 or args.shared_slots:
            raise usage_error("--partitions and --shared-slots need --queue NAME")
        queues = None
    timeout = args.shutdown_timeout if args.shutdown_timeout is not None else config.get("shutdown_timeout", 10.0)
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise usage_error("shutdown timeout must be a number of seconds >= 0")
    options = config.get("options", {})
    if not isinstance(options, dict):
        raise usage_error(f"{where}: options must be a table")
    return handlers, queues, global_max, float(timeout), options


def import_handlers(client: Any, handlers: list[str]) -> None:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for spec in handlers:
        module_name, _, func_name = spec.partition(":")
        func_name = func_name or "register"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise usage_error(f"cannot import handler module {module_name!r}: {exc}") from None
        setup = getattr(module, func_name, None)
        if not callable(setup):
            raise usage_error(f"handler module {module_name!r} has no function {func_name}(client)")
        setup(client)


# -- running -------------------------------------------------------------------


def _served_queues(client: Any) -> list[str]:
    runtime = client.worker_runtime
    health = runtime.health() if runtime is not None else {}
    return sorted(health.get("queues", {}))


def _status_line(client: Any) -> str:
    health = client.worker_health() or {}
    queues = health.get("queues", {})
    completed = sum(q.get("completed", 0) for q in queues.values())
    claimed = sum(q.get("claimed", 0) for q in queues.values())
    in_flight = sum(q.get("in_flight", 0) for q in queues.values())
    return f"claimed {claimed}, finished {completed}, running now {in_flight}"


def _outstanding(client: Any, queues: list[str]) -> int:
    wanted = set(queues)
    return sum(s.scheduled + s.available + s.retryable + s.running for s in client.queue_stats() if s.queue in wanted)


def run(args: argparse.Namespace) -> int:
    handlers, queues, global_max, timeout, options = plan_from_args(args)
    if args.status_every < 0:
        raise usage_error("--status-every must be >= 0")

    stop = threading.Event()
    stop_reason: list[str] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        stop_reason.append("SIGTERM")
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with open_database(args) as db:
            check_database(db)
            from awa.client import Client

            client = Client(db.url, schema=db.schema, max_connections=8)
            try:
                import_handlers(client, handlers)
                try:
                    client.start(queues, global_max_workers=global_max, **options)
                except ValueError as exc:  # ValidationError from the runtime: bad queue config
                    raise usage_error(str(exc)) from None
                served = _served_queues(client)
                progress(f"working {', '.join(served)} (Ctrl-C or SIGTERM to stop)")
                interrupted = False
                try:
                    _wait(client, stop, served, args)
                except KeyboardInterrupt:
                    interrupted = True
                progress(f"stopping: {_status_line(client)}; waiting up to {timeout:g}s for running jobs ...")
                client.shutdown(int(timeout * 1000))
                progress(f"stopped: {_status_line(client)}")
                return EXIT_INTERRUPTED if interrupted else 0
            finally:
                client.shutdown(0)
                client.close()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait(client: Any, stop: threading.Event, served: list[str], args: argparse.Namespace) -> None:
    check_every = 0.2
    next_status = time.monotonic() + args.status_every if args.status_every else None
    while not stop.wait(check_every):
        if args.until_empty and _outstanding(client, served) == 0:
            progress("the served queues are empty")
            return
        if next_status is not None and time.monotonic() >= next_status:
            progress(_status_line(client))
            next_status += args.status_every
        runtime = client.worker_runtime
        if runtime is not None and getattr(runtime, "stopped", False):
            raise CliError("the worker runtime stopped unexpectedly")
