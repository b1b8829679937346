"""``awa`` / ``python -m awa``: the command line.

Subcommands live in one module each (``migrate``, ``enqueue``, ``work``,
``stats``, ``queue`` (+ ``rescue``), ``dlq``); each module has a
``register(subparsers)`` that adds its parser and sets ``func``. ``main``
turns every expected failure into one line on stderr and a documented exit
code (see :mod:`awa.cli.common`), so scripts can branch on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from awa.cli.common import (
    EXIT_CODES_HELP,
    EXIT_DB_UNAVAILABLE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
)

DESCRIPTION = """\
Partitioned queues on a PostgreSQL job queue.

The database is --database-url, else $DATABASE_URL; --embedded starts a
throwaway PostgreSQL for the duration of one command instead.
"""


def build_parser() -> argparse.ArgumentParser:
    from awa.version import __version__
    from awa.cli import cron, dlq, enqueue, jobs, keys, logs, migrate, queue, stats, work

    parser = argparse.ArgumentParser(
        prog="awa",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"awa {__version__}")
    logs.add_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (migrate, enqueue, work, stats, queue, dlq, jobs, keys, cron):
        module.register(subparsers)
    return parser


def _error(message: str) -> None:
    print(f"awa: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (never raises for expected errors)."""
    import psycopg

    from awa.errors import AwaError, DatabaseUnavailable, ValidationError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE

    try:
        from awa.cli import logs

        logs.configure(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except DatabaseUnavailable as exc:
        _error(str(exc))
        return EXIT_DB_UNAVAILABLE
    except ValidationError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except psycopg.OperationalError as exc:
        # The connection broke mid-command (server stopped, network). Keep one line.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _error(f"database connection lost: {first}")
        return EXIT_DB_UNAVAILABLE
    except (AwaError, psycopg.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _error(first)
        return EXIT_FAILURE
    except BrokenPipeError:  # e.g. `awa dlq list | head`
        sys.stderr.close()
        return EXIT_FAILURE
    except Exception as exc:  # a bug: say so, keep the traceback available on request
        if os.environ.get("AWA_DEBUG"):
            traceback.print_exc()
        _error(f"unexpected {type(exc).__name__}: {exc} (set AWA_DEBUG=1 for a traceback)")
        return EXIT_FAILURE


__all__ = ["main", "build_parser", "EXIT_USAGE"]
