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
SIGTERM or Ctrl-C stop claiming and give running jobs --grace-period
seconds to finish (exit 0 for SIGTERM, 130 for Ctrl-C); async handlers still
running then are cancelled and their jobs released at once. A synchronous
handler cannot be interrupted: its job is released with a delay of
ABANDON_DELAY_S seconds and the process exits at once, ending the handler,
so it never runs twice at the same time. A second signal exits at once
(jobs still running stay leased; heartbeat rescue retries them). "stopped"
is printed once nothing runs any more. SIGUSR1 writes every thread's stack
to stderr (where a worker that does not stop is waiting). Connection errors are logged once per
outage, with a count when the database is back.

``--until-empty`` exits 0 once the served queues hold no scheduled,
available, retryable or running job; exits 4 when only jobs waiting for a
retry are left (nothing available or running for --retry-grace seconds);
with ``--max-wait SECONDS`` it exits 5 when the queues are not empty by then.
Each failed attempt is logged once (kind, id, queue, attempt/max, the error's
last line, the next attempt's time); the status line counts them.
``--metrics-port PORT`` serves the OpenTelemetry metrics for Prometheus at
http://127.0.0.1:PORT/metrics (needs the ``metrics`` extra).
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from awa.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MAX_WAIT,
    EXIT_RETRIES_PENDING,
    CliError,
    add_database_options,
    check_database,
    open_database,
    usage_error,
)

log = logging.getLogger("awa.cli.work")

MAX_GRACE_S = 86_400
# An abandoned synchronous handler's job runs again this long after the
# process released it and exited (the exit ends the handler within ms).
ABANDON_DELAY_S = 1.0

_QUEUE_KEYS = {"name", "partitions", "shared_slots", "max_workers", "min_workers", "weight", "rate_limit", "claimers",
               "claim_batch_size", "deadline_duration_ms", "priority_aging_interval_ms", "retention"}
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
    parser.add_argument("--grace-period", "--shutdown-timeout", dest="shutdown_timeout", type=float, default=None,
                        metavar="SECONDS",
                        help="on SIGTERM/Ctrl-C, how long running jobs may take to finish before their jobs are "
                             "released (default 10)")
    parser.add_argument("--until-empty", action="store_true",
                        help="exit 0 once the served queues have no scheduled, available, retryable or running jobs; "
                             "exit 4 when only jobs waiting for a retry are left")
    parser.add_argument("--retry-grace", type=float, default=10.0, metavar="SECONDS",
                        help="with --until-empty: how long nothing may be available or running while retries wait "
                             "before exiting 4 (default 10: the first retries, after 2, 4 and 8 s, still run)")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help="with --until-empty: exit 5 if the queues are not empty after SECONDS")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (pip install 'awa-partitioned[metrics]')")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address for --metrics-port (default 127.0.0.1)")
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
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout)
            or not 0 <= timeout <= MAX_GRACE_S):
        raise usage_error(f"the grace period (--grace-period, shutdown_timeout) must be a number of seconds "
                          f"from 0 to {MAX_GRACE_S}, got {timeout!r}")
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

    def total(key: str) -> int:
        return sum(q.get(key, 0) for q in queues.values())

    return (f"claimed {total('claimed')}, completed {total('completed')}, failed attempts "
            f"{total('failed_attempts')} ({total('retrying')} retrying, {total('failed')} failed for good), "
            f"running now {total('in_flight')}")


def _outstanding(client: Any, queues: list[str]) -> tuple[int, int]:
    """(jobs not finished, of which waiting for a retry) in the served queues."""
    wanted = set(queues)
    stats = [s for s in client.queue_stats() if s.queue in wanted]
    return sum(s.scheduled + s.available + s.retryable + s.running for s in stats), sum(s.retryable for s in stats)


def run(args: argparse.Namespace) -> int:
    handlers, queues, global_max, timeout, options = plan_from_args(args)
    if args.status_every < 0:
        raise usage_error("--status-every must be >= 0")
    if args.max_wait is not None and (not args.until_empty or args.max_wait <= 0):
        raise usage_error("--max-wait needs --until-empty and a number of seconds > 0")
    if args.retry_grace < 0:
        raise usage_error("--retry-grace must be >= 0")
    if args.metrics_port is not None:
        from awa.cli.metrics_server import serve_metrics

        serve_metrics(args.metrics_host, args.metrics_port)

    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        signals.append(signum)
        if len(signals) == 1:
            stop.set()
            return
        # A second signal: leave now, no cleanup, no traceback.
        sys.stderr.write(f"{signal.Signals(signum).name} again: exiting now; jobs still running stay leased until "
                         "heartbeat rescue retries them\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        # A Python-level handler, not faulthandler.register: that one walks the
        # other threads' frames from the C signal handler while they run, and
        # crashed a worker (SIGSEGV) mid-walk; this one runs in the main thread
        # holding the GIL, so every other thread is parked at a safe point.
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, _dump_stacks)
    _quiet_pool_logs()
    try:
        with open_database(args) as db:
            check_database(db)
            from awa.client import Client

            client = Client(db.url, schema=db.schema, max_connections=8)
            try:
                _check_flag_widths(client, args)
                import_handlers(client, handlers)
                try:
                    client.start(queues, global_max_workers=global_max, **options)
                except ValueError as exc:  # ValidationError from the runtime: bad queue config
                    raise usage_error(str(exc)) from None
                served = _served_queues(client)
                log.info("working %s (Ctrl-C or SIGTERM to stop)", ", ".join(served))
                code = _wait(client, stop, served, args)
                interrupted = bool(signals) and signals[0] == signal.SIGINT
                log.info("stopping: %s; waiting up to %gs for running jobs ...", _status_line(client), timeout)
                runtime = client.worker_runtime
                client.shutdown(int(timeout * 1000))
                code = EXIT_INTERRUPTED if interrupted else code
                still = [job for job in getattr(runtime, "abandoned", []) if not _settled(runtime, job)]
                if still:
                    _release_and_exit(client, still, code)
                log.info("stopped: %s", _status_line(client))
                return code
            finally:
                client.shutdown(0)
                client.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dump_stacks(signum: int, frame: Any) -> None:
    """SIGUSR1: every thread's stack to stderr; the worker goes on."""
    try:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    except (AttributeError, OSError, ValueError):  # a stderr without a file descriptor
        import traceback

        for ident, top in sys._current_frames().items():
            sys.stderr.write(f"Thread 0x{ident:016x} (most recent call first):\n")
            sys.stderr.write("".join(reversed(traceback.format_stack(top))))
    sys.stderr.flush()


def _quiet_pool_logs() -> None:
    """psycopg_pool's per-attempt warnings through our handler, minus the noise."""
    from awa.worker.outage import PoolNoiseFilter

    pool_log = logging.getLogger("psycopg.pool")
    if not any(isinstance(f, PoolNoiseFilter) for f in pool_log.filters):
        pool_log.addFilter(PoolNoiseFilter())
    for handler in logging.getLogger("awa").handlers:
        if getattr(handler, "_awa_cli", False) and handler not in pool_log.handlers:
            pool_log.addHandler(handler)
            pool_log.propagate = False


def _settled(runtime: Any, job: Any) -> bool:
    return job.id not in getattr(runtime, "running_sync_ids", lambda: set())()


def _release_and_exit(client: Any, jobs: list[Any], code: int) -> None:
    """Synchronous handlers outlived the grace period: release their jobs with
    a short delay, then end the process (and with it the handlers) at once."""
    released = 0
    for job in jobs:
        try:
            released += bool(client.snooze(job.raw.id, job.raw.run_lease, ABANDON_DELAY_S))
        except Exception as exc:  # noqa: BLE001 - heartbeat rescue recovers it
            log.warning("could not release job %s (%s); heartbeat rescue will retry it", job.raw.id, exc)
    log.warning("not stopped cleanly: %d synchronous handler(s) still running after the grace period; "
                "%d job(s) released to run again in %gs; exiting now, which ends them",
                len(jobs), released, ABANDON_DELAY_S)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _check_flag_widths(client: Any, args: argparse.Namespace) -> None:
    """``--queue X --partitions N`` serves all of logical queue X: refuse another registered width."""
    if not args.queue:
        return
    from awa.errors import PartitionCountMismatch

    registered = client.queue_partitions()
    for name in args.queue:
        width = registered.get(name)
        if width is not None and width != args.partitions:
            raise usage_error(str(PartitionCountMismatch(name, width, args.partitions, "--partitions")))


def _wait(client: Any, stop: threading.Event, served: list[str], args: argparse.Namespace) -> int:
    """Until stopped (0), or with --until-empty: empty (0), only retries left (4), --max-wait passed (5)."""
    check_every = 0.2
    started = time.monotonic()
    next_status = started + args.status_every if args.status_every else None
    only_retries_since: float | None = None
    while not stop.wait(check_every):
        now = time.monotonic()
        if args.until_empty:
            outstanding, retrying = _outstanding(client, served)
            if outstanding == 0:
                log.info("the served queues are empty")
                return 0
            health = client.worker_health() or {}
            running = sum(q.get("in_flight", 0) for q in health.get("queues", {}).values())
            if retrying and outstanding == retrying and running == 0:
                only_retries_since = only_retries_since if only_retries_since is not None else now
                if now - only_retries_since >= args.retry_grace:
                    log.warning("only %d job(s) waiting for a retry are left; exiting (%d). "
                                "See them with: awa jobs list --state retryable", retrying, EXIT_RETRIES_PENDING)
                    return EXIT_RETRIES_PENDING
            else:
                only_retries_since = None
            if args.max_wait is not None and now - started >= args.max_wait:
                log.warning("%d job(s) not finished after --max-wait %gs (%d waiting for a retry); exiting (%d)",
                            outstanding, args.max_wait, retrying, EXIT_MAX_WAIT)
                return EXIT_MAX_WAIT
        if next_status is not None and now >= next_status:
            log.info("%s", _status_line(client))
            next_status += args.status_every
        runtime = client.worker_runtime
        if runtime is not None and getattr(runtime, "stopped", False):
            raise CliError("the worker runtime stopped unexpectedly")
    return 0
