"""Versioned schema migrations.

Migrations are the files ``sql/migrations/NNNN_name.sql`` in this package,
applied in numeric order. Each one runs in its own transaction and is recorded
in ``<schema>.schema_migrations``; a file already recorded is never run again,
so ``migrate()`` is idempotent. A transaction-level advisory lock (keyed on the
schema name) serialises concurrent migrators: the second process waits, then
finds everything recorded and does nothing.

The token ``__schema__`` in a migration is replaced by the schema name quoted
with :class:`psycopg.sql.Identifier`, so the schema is configurable without
string-formatting identifiers by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from awa.errors import MigrationError, ValidationError

SCHEMA_TOKEN = "__schema__"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Keeps schema names to something an operator can type; they are quoted anyway.
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str


def validate_schema_name(schema: str) -> str:
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ValidationError(
            f"schema must be 1-63 characters of letters, digits and '_' (not starting with a digit); got {schema!r}"
        )
    return schema


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    folder = resources.files("awa.storage").joinpath("sql", "migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


def render(text: str, schema: str, conn: psycopg.Connection) -> str:
    """Replace the schema token with the properly quoted identifier."""
    quoted = sql.Identifier(validate_schema_name(schema)).as_string(conn)
    return text.replace(SCHEMA_TOKEN, quoted)


def _lock_key(schema: str) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(f"awa.migrate:{schema}"))


def applied_versions(conn: psycopg.Connection, schema: str = "awa") -> list[int]:
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{sql.Identifier(schema).as_string(conn)}.schema_migrations"]).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version").format(sql.Identifier(schema))
    ).fetchall()
    return [r[0] for r in rows]


def migrate(conn: psycopg.Connection, schema: str = "awa") -> list[int]:
    """Apply every pending migration; return the versions applied by this call.

    ``conn`` may be in any transaction state that is idle; it is used with
    autocommit off and each migration commits on its own.
    """
    validate_schema_name(schema)
    migrations = load_migrations()
    applied_now: list[int] = []
    previous_autocommit = conn.autocommit
    conn.autocommit = False
    try:
        ident = sql.Identifier(schema)
        with conn.transaction():
            conn.execute(_lock_key(schema))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
        for migration in migrations:
            with conn.transaction():
                conn.execute(_lock_key(schema))
                done = conn.execute(
                    sql.SQL("SELECT 1 FROM {}.schema_migrations WHERE version = %s").format(ident),
                    [migration.version],
                ).fetchone()
                if done:
                    continue
                try:
                    conn.execute(render(migration.text, schema, conn))
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(ident),
                    [migration.version, migration.name],
                )
                applied_now.append(migration.version)
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = previous_autocommit
    return applied_now


def migrate_url(database_url: str, schema: str = "awa") -> list[int]:
    """Open a connection to ``database_url``, migrate, close."""
    from awa.db.url import connect_or_explain

    with connect_or_explain(database_url) as conn:
        return migrate(conn, schema)
