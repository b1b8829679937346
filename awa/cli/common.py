"""Shared plumbing of the ``awa`` command line: exit codes, errors, database resolution."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

# Exit codes scripts can rely on (also listed in `awa --help` and docs/operations.md).
EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and something went wrong (job failed to insert, check failed, ...)
EXIT_USAGE = 2  # bad arguments or bad input; nothing was changed (argparse uses 2 as well)
EXIT_DB_UNAVAILABLE = 3  # no database configured, or it cannot be reached
EXIT_RETRIES_PENDING = 4  # awa work --until-empty: only jobs waiting for a retry are left
EXIT_MAX_WAIT = 5  # awa work --until-empty --max-wait: the queues were not empty in time
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_FAILURE}    runtime failure (the command ran and failed)
  {EXIT_USAGE}    usage or input error (nothing was changed)
  {EXIT_DB_UNAVAILABLE}    database not configured or unreachable
  {EXIT_RETRIES_PENDING}    awa work --until-empty: only jobs waiting for a retry are left
  {EXIT_MAX_WAIT}    awa work --until-empty --max-wait: the queues were not empty in time
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

NO_DATABASE_HELP = (
    "no database given: pass --database-url postgresql://user@host:port/dbname, "
    "set DATABASE_URL, or add --embedded to start a throwaway PostgreSQL for this command "
    "(python -m awa.db.embedded starts one that stays up and prints its URL)"
)


class CliError(Exception):
    """An error reported as one line on stderr with a specific exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def usage_error(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


def progress(message: str) -> None:
    """Progress and status lines go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    from awa.cli import logs

    logs.add_options(parser)  # every command that reaches a database also logs
    group = parser.add_argument_group("database")
    group.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="PostgreSQL URL (default: $DATABASE_URL)",
    )
    group.add_argument(
        "--schema",
        default="awa",
        help="schema holding the awa tables (default: awa)",
    )
    group.add_argument(
        "--embedded",
        action="store_true",
        help="start a throwaway PostgreSQL for the duration of this command (migrated automatically; "
        "its data is deleted when the command exits)",
    )


@dataclass
class Database:
    url: str
    schema: str
    embedded: bool


@contextlib.contextmanager
def open_database(args: argparse.Namespace, *, migrate_embedded: bool = True) -> Iterator[Database]:
    """Resolve where the database is: --embedded, --database-url, $DATABASE_URL, else a clear error."""
    from awa.db.url import database_url_from_env

    schema = args.schema
    from awa.storage.migrate import validate_schema_name

    try:
        validate_schema_name(schema)
    except ValueError as exc:
        raise usage_error(str(exc)) from None

    if args.embedded:
        if args.database_url:
            raise usage_error("--embedded and --database-url are mutually exclusive")
        from awa.db.embedded import EmbeddedPostgres, EmbeddedPostgresError

        progress("starting a throwaway embedded PostgreSQL ...")
        try:
            server = EmbeddedPostgres().start()
        except EmbeddedPostgresError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CliError(f"cannot start embedded PostgreSQL: {first}", EXIT_DB_UNAVAILABLE) from None
        try:
            progress(f"embedded PostgreSQL at {server.url} (deleted when this command exits)")
            if migrate_embedded:
                from awa.db.url import connect_or_explain
                from awa.storage.migrate import migrate

                with connect_or_explain(server.url) as conn:
                    migrate(conn, schema)
            yield Database(server.url, schema, embedded=True)
        finally:
            server.stop()
        return

    url = args.database_url or database_url_from_env()
    if not url:
        raise CliError(NO_DATABASE_HELP, EXIT_DB_UNAVAILABLE)
    yield Database(url, schema, embedded=False)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def check_migrated(conn, schema: str, url: str) -> None:
    """Fail with a helpful line when the schema has never been migrated."""
    from awa.db.url import describe

    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".schema_migrations']).fetchone()
    if not row or not row[0]:
        raise CliError(f"schema {schema!r} does not exist at {describe(url)}; run 'awa migrate' first")


def check_database(db: Database) -> None:
    """Reachable and migrated, or a one-line error (exit 3 / 1)."""
    from awa.db.url import connect_or_explain

    with connect_or_explain(db.url, autocommit=True) as probe:
        check_migrated(probe, db.schema, db.url)


@contextlib.contextmanager
def open_client(db: Database, *, max_connections: int = 4) -> Iterator:
    """A sync :class:`awa.client.Client`, after a fast reachability and schema check.

    The pool would otherwise retry an unreachable server for its whole timeout
    before failing; one direct connection gives the one-line error at once.
    """
    from awa.client import Client

    check_database(db)
    client = Client(db.url, schema=db.schema, max_connections=max_connections)
    try:
        yield client
    finally:
        client.close()
