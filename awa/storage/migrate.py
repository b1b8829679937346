"""Versioned schema migrations, written once and driven sync or async.

Migrations live in ``sql/migrations/`` in this package and are applied in
version order. A version is either one file ``NNNN_name.sql`` or a directory
``NNNN_name/`` of ordered parts ``NN_part.sql``: the parts run in name order,
all in the version's one transaction, and the version is recorded once. Each
version runs in its own transaction and is recorded in
``<schema>.schema_migrations``; a version already recorded is never run again,
so migrating is idempotent. A transaction-level advisory lock (keyed on the
schema name) serialises concurrent migrators: the second one waits, then
finds everything recorded and does nothing.

Version 1 is the baseline ``0001_baseline/``, split by concern: ``01_routing``
(the routing hash twins), ``02_tables`` (type, tables, indexes), ``03_lanes``
(the lane-head bump and the lane-head lookup, each written once),
``04_enqueue`` (reservations, single inserts, promotion of due jobs),
``05_claim`` (the claim, and the shared-cap claim as a call of it),
``06_lifecycle`` (finish, rescue, dead-letter), ``07_admin`` (cancel,
retry from the dead-letter table), ``08_retention`` (pruning, rolled-up
terminal counts, autovacuum settings), ``09_jobs`` (the listing index,
retry by id), ``10_partitions`` (the partition-count registry), and the parts
of later features such as ``16_repartition`` (online width changes). Later
schema changes are new versions
(``0002_...``); the baseline is never edited in place once released.

Before applying anything the recorded versions are compared with the shipped
ones: a recorded version whose name differs from the shipped file of that
number means the schema was built by another layout (such as the pre-release
migrations 0001-0004 that the baseline replaced), and :class:`MigrationError`
says so and what to do instead of running against a mismatched schema.

The token ``__schema__`` in a migration is replaced by the schema name quoted
with :class:`psycopg.sql.Identifier`, so the schema is configurable without
string-formatting identifiers by hand.

The logic lives in one I/O-free plan (:func:`_migration_plan`), a generator
that yields :class:`Transaction` steps whose bodies yield :class:`Statement`
steps and receive their rows. :func:`migrate` drives it on a
``psycopg.Connection``, :func:`migrate_async` on a ``psycopg.AsyncConnection``
(the same pattern as the client's sans-IO core). Both run on exactly the
connection they are given: no reconnecting, so whatever that connection was
opened with (password, sslmode, role, session settings) applies.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from awa.errors import MigrationError, ValidationError

SCHEMA_TOKEN = "__schema__"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MIGRATION_DIR = re.compile(r"^(\d{4})_([a-z0-9_]+)$")
_PART_NAME = re.compile(r"^\d{2}_[a-z0-9_]+\.sql$")
# The ledger of a schema built before the baseline replaced these four files.
_PRE_RELEASE_LAYOUT = {
    1: "routing_functions",
    2: "queue_storage_tables",
    3: "queue_storage_functions",
    4: "claim_with_per_queue_limits",
}
# Keeps schema names to something an operator can type; they are quoted anyway.
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    """One version. ``text`` is the whole migration; ``parts`` holds (file name,
    text) of each part of a directory version, in order (empty for one file)."""

    version: int
    name: str
    text: str
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement; the driver sends back its rows (``[]`` when it returns none)."""

    query: sql.Composable | str
    params: Sequence[Any] | None = None


Rows = list[tuple[Any, ...]]
# A transaction body: yields statements, receives their rows. A psycopg error
# raised by a statement is thrown into the body at its ``yield``.
Body = Generator[Statement, Rows, Any]


@dataclass(frozen=True, slots=True)
class Transaction:
    """Run ``body`` in one transaction (committed when it returns, rolled back if it raises)."""

    body: Body


# A plan yields bare statements (run in the connection's current state) or
# whole transactions, and receives rows or a body's return value.
Plan = Generator[Statement | Transaction, Any, Any]


def validate_schema_name(schema: str) -> str:
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ValidationError(
            f"schema must be 1-63 characters of letters, digits and '_' (not starting with a digit); got {schema!r}"
        )
    return schema


def _read_version(entry: Any) -> Migration | None:
    """The migration stored at ``entry`` (a file or a directory of parts), or None."""
    if entry.is_dir():
        match = _MIGRATION_DIR.match(entry.name)
        if not match:
            return None
        parts = tuple(
            (part.name, part.read_text(encoding="utf-8"))
            for part in sorted(entry.iterdir(), key=lambda p: p.name)
            if part.is_file() and _PART_NAME.match(part.name)
        )
        if not parts:
            raise MigrationError(f"migration directory {entry.name} holds no NN_name.sql parts")
        return Migration(int(match.group(1)), match.group(2), "\n".join(text for _, text in parts), parts)
    match = _MIGRATION_NAME.match(entry.name)
    if not match:
        return None
    return Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    folder = resources.files("awa.storage").joinpath("sql", "migrations")
    found = [m for m in (_read_version(entry) for entry in folder.iterdir()) if m is not None]
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


def ledger_mismatch(schema: str, recorded: Sequence[tuple[int, str]], shipped: Sequence[Migration]) -> str | None:
    """Why the recorded ``(version, name)`` rows do not match ``shipped``, or None.

    A recorded version whose shipped migration has another name was built by a
    different set of migrations, so its objects may differ from what this
    package's queries expect. Versions not shipped at all are left alone.
    """
    names = {m.version: m.name for m in shipped}
    if all(names.get(version, name) == name for version, name in recorded):
        return None
    was = ", ".join(f"{version:04d}_{name}" for version, name in recorded)
    now = ", ".join(m.label for m in shipped)
    why = ""
    if all(_PRE_RELEASE_LAYOUT.get(version) == name for version, name in recorded):
        why = (
            "Before the first release the migrations 0001-0004 were replaced by one baseline (0001_baseline); "
            "a schema built by them cannot be upgraded in place. "
        )
    return (
        f"schema {schema!r} was created by other migrations than this awa ships "
        f"(recorded: {was}; shipped: {now}). {why}"
        f"Drop the schema (DROP SCHEMA {sql.Identifier(schema).as_string(None)} CASCADE, which deletes its jobs) "
        "and migrate again (awa migrate, or Client.migrate())."
    )


def _compose(text: str, schema: str) -> sql.Composed:
    """The migration text with every schema token replaced by the quoted identifier."""
    ident = sql.Identifier(validate_schema_name(schema))
    pieces: list[sql.Composable] = []
    for i, part in enumerate(text.split(SCHEMA_TOKEN)):
        if i:
            pieces.append(ident)
        pieces.append(sql.SQL(part))
    return sql.Composed(pieces)


def render(text: str, schema: str, conn: psycopg.Connection | psycopg.AsyncConnection) -> str:
    """Replace the schema token with the properly quoted identifier."""
    return _compose(text, schema).as_string(conn)


def _lock(schema: str) -> Statement:
    return Statement("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"awa.migrate:{schema}"])


# ---------------------------------------------------------------- the plans


def _applied_plan(schema: str) -> Plan:
    # Looked up in the catalog by name, so no identifier has to be quoted here.
    exists = yield Statement(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = 'schema_migrations')",
        [schema],
    )
    if not exists[0][0]:
        return []
    rows = yield Statement(
        sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version").format(sql.Identifier(schema))
    )
    return [r[0] for r in rows]


def _bootstrap(schema: str, shipped: Sequence[Migration]) -> Body:
    """Create the schema and ledger; refuse a ledger written by other migrations."""
    ident = sql.Identifier(schema)
    yield _lock(schema)
    yield Statement(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
    yield Statement(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(ident)
    )
    recorded = yield Statement(sql.SQL("SELECT version, name FROM {}.schema_migrations ORDER BY version").format(ident))
    problem = ledger_mismatch(schema, [(v, n) for v, n in recorded], shipped)
    if problem:
        raise MigrationError(problem)


def _apply_one(schema: str, migration: Migration) -> Body:
    """Apply ``migration`` unless recorded; return whether this call applied it."""
    ident = sql.Identifier(schema)
    # Re-checked under the lock: a concurrent migrator may have applied it meanwhile.
    yield _lock(schema)
    done = yield Statement(
        sql.SQL("SELECT 1 FROM {}.schema_migrations WHERE version = %s").format(ident), [migration.version]
    )
    if done:
        return False
    for part, text in migration.parts or ((None, migration.text),):
        try:
            yield Statement(_compose(text, schema))
        except psycopg.Error as exc:
            where = f" (in {part})" if part else ""
            raise MigrationError(f"migration {migration.label} failed{where}: {exc}") from exc
    yield Statement(
        sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(ident),
        [migration.version, migration.name],
    )
    return True


def _migration_plan(schema: str) -> Plan:
    validate_schema_name(schema)  # before any statement: bad input leaves the database untouched
    migrations = load_migrations()
    yield Transaction(_bootstrap(schema, migrations))
    applied_now: list[int] = []
    for migration in migrations:
        if (yield Transaction(_apply_one(schema, migration))):
            applied_now.append(migration.version)
    return applied_now


def _require_idle(conn: psycopg.Connection | psycopg.AsyncConnection) -> None:
    # Each migration must really commit; inside the caller's transaction the
    # per-version transactions would silently become savepoints of it.
    status = conn.info.transaction_status
    if status != psycopg.pq.TransactionStatus.IDLE:
        raise ValidationError(
            "migrate needs a connection with no transaction in progress (each migration commits on its own); "
            f"this one is {status.name}: commit or roll back first"
        )


# ---------------------------------------------------------------- sync driver


def _execute(conn: psycopg.Connection, step: Statement) -> Rows:
    cur = conn.execute(step.query, step.params)
    return cur.fetchall() if cur.description else []


def _run_body(conn: psycopg.Connection, body: Body) -> Any:
    try:
        step = next(body)
        while True:
            try:
                rows = _execute(conn, step)
            except psycopg.Error as exc:
                step = body.throw(exc)
            else:
                step = body.send(rows)
    except StopIteration as done:
        return done.value
    finally:
        body.close()


def _run_plan(conn: psycopg.Connection, plan: Plan) -> Any:
    try:
        step = next(plan)
        while True:
            if isinstance(step, Transaction):
                with conn.transaction():
                    outcome = _run_body(conn, step.body)
            else:
                outcome = _execute(conn, step)
            step = plan.send(outcome)
    except StopIteration as done:
        return done.value
    finally:
        plan.close()


def migrate(conn: psycopg.Connection, schema: str = "awa") -> list[int]:
    """Apply every pending migration on ``conn``; return the versions applied by this call.

    ``conn`` must have no transaction in progress (autocommit on or off both
    work, and the setting is left as it was): each migration runs in its own
    transaction and commits before the next starts.
    """
    _require_idle(conn)
    return _run_plan(conn, _migration_plan(schema))


def applied_versions(conn: psycopg.Connection, schema: str = "awa") -> list[int]:
    """Versions recorded in ``<schema>.schema_migrations`` (``[]`` before the first migrate)."""
    return _run_plan(conn, _applied_plan(schema))


def migrate_url(database_url: str, schema: str = "awa") -> list[int]:
    """Open a connection to ``database_url``, migrate, close."""
    from awa.db.url import connect_or_explain

    with connect_or_explain(database_url) as conn:
        return migrate(conn, schema)


# ---------------------------------------------------------------- async driver


async def _execute_async(conn: psycopg.AsyncConnection, step: Statement) -> Rows:
    cur = await conn.execute(step.query, step.params)
    return await cur.fetchall() if cur.description else []


async def _run_body_async(conn: psycopg.AsyncConnection, body: Body) -> Any:
    try:
        step = next(body)
        while True:
            try:
                rows = await _execute_async(conn, step)
            except psycopg.Error as exc:
                step = body.throw(exc)
            else:
                step = body.send(rows)
    except StopIteration as done:
        return done.value
    finally:
        body.close()


async def _run_plan_async(conn: psycopg.AsyncConnection, plan: Plan) -> Any:
    try:
        step = next(plan)
        while True:
            if isinstance(step, Transaction):
                async with conn.transaction():
                    outcome = await _run_body_async(conn, step.body)
            else:
                outcome = await _execute_async(conn, step)
            step = plan.send(outcome)
    except StopIteration as done:
        return done.value
    finally:
        plan.close()


async def migrate_async(conn: psycopg.AsyncConnection, schema: str = "awa") -> list[int]:
    """:func:`migrate` for a ``psycopg.AsyncConnection``: same plan, same rules."""
    _require_idle(conn)
    return await _run_plan_async(conn, _migration_plan(schema))


async def applied_versions_async(conn: psycopg.AsyncConnection, schema: str = "awa") -> list[int]:
    """:func:`applied_versions` for a ``psycopg.AsyncConnection``."""
    return await _run_plan_async(conn, _applied_plan(schema))
