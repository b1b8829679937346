"""``awa migrate``: create or upgrade the schema."""

from __future__ import annotations

import argparse

from awa.cli.common import add_database_options, open_database, progress
from awa.cli.compat import add_migrate_options, print_migration_sql


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the awa schema (safe to run repeatedly and concurrently)",
        description="Apply every pending migration. Idempotent: already-applied versions are skipped; "
        "concurrent runs wait on an advisory lock.",
    )
    add_database_options(parser)
    add_migrate_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from awa.db.url import connect_or_explain, describe
    from awa.storage.migrate import applied_versions, load_migrations, migrate

    if print_migration_sql(args):
        return 0
    with open_database(args, migrate_embedded=False) as db:
        names = {m.version: f"{m.version:04d}_{m.name}" for m in load_migrations()}
        with connect_or_explain(db.url) as conn:
            progress(f"migrating schema {db.schema!r} at {describe(db.url)} ...")
            applied = migrate(conn, db.schema)
            total = applied_versions(conn, db.schema)
        for version in applied:
            print(f"applied {names.get(version, version)}")
        if applied:
            print(f"schema {db.schema} is at version {max(total):04d} ({len(applied)} applied now)")
        else:
            latest = f"{max(total):04d}" if total else "none"
            print(f"schema {db.schema} is up to date (version {latest})")
    return 0
