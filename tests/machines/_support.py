"""Plumbing shared by the state machines: settings per profile, DB reset, row reads.

Each machine test gets ONE migrated database (``database_factory``) and empties
it at the start of every Hypothesis example, which is far cheaper than a
``CREATE DATABASE`` per example (measured in ADR 0010).
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DB_DIR = ROOT / ".hypothesis" / "examples"  # .gitignored

# (max_examples, stateful_step_count) per profile. ci keeps the whole machines
# suite inside ~3 minutes on 2 cores; deep is for `make verify-deep`.
_BUDGET = {
    "ci": (25, 20),
    "dev": (100, 40),
    "deep": (1000, 80),
}


def profile_name() -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", "ci")


def machine_settings(*, examples_scale: float = 1.0, steps: int | None = None, **overrides) -> settings:
    """Settings for one machine, derived from the loaded profile.

    Derandomised profiles (ci) ignore the example database by Hypothesis' rule;
    the others persist failures under .hypothesis/examples so a re-run replays them.
    """
    max_examples, step_count = _BUDGET.get(profile_name(), _BUDGET["ci"])
    base = settings()  # the loaded profile
    extra: dict = {}
    if profile_name() == "ci":
        # The explain phase re-runs the shrunk example many times to annotate
        # it; on a database-backed machine it cost ~50 s of a 60 s run.
        extra["phases"] = [p for p in base.phases if p is not Phase.explain]
    if not base.derandomize:
        extra["database"] = DirectoryBasedExampleDatabase(str(EXAMPLE_DB_DIR))
    if os.environ.get("AWA_MACHINES_NO_SHRINK"):
        # scripts/mutants.py: a failure is all it needs, not the smallest one.
        extra["phases"] = [p for p in base.phases if p not in (Phase.shrink, Phase.explain)]
    extra.update(overrides)
    return settings(
        base,
        max_examples=max(1, int(max_examples * examples_scale)),
        stateful_step_count=steps if steps is not None else step_count,
        **extra,
    )


def user_tables(conn: psycopg.Connection, schema: str = "awa") -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations' "
        "AND NOT c.relispartition ORDER BY c.relname",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def reset_database(conn: psycopg.Connection, tables: list[str], schema: str = "awa", *, truncate: bool = False) -> None:
    """Empty every awa table so each example starts clean.

    DELETE by default: on these tiny tables it measured ~3 ms against ~33 ms
    for TRUNCATE; identities keep counting, which no invariant depends on.
    ``truncate=True`` also resets the heap layout, so scans return rows in the
    same physical order in every example: needed where SQL calls random()
    per scanned row (claim_jobs) and examples must replay identically.
    """
    if not tables:
        return
    if truncate:
        stmt = sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
        )
    else:
        stmt = sql.SQL("; ").join(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, t)) for t in tables)
    conn.execute(stmt)
    if not conn.autocommit:
        conn.commit()


def reset_machine(machine: object, *, truncate: bool = False) -> None:
    """Empty the database of a machine at the start of an example; the list of
    tables is read once per machine class (its ``_tables``) and kept there."""
    cls = type(machine)
    if cls._tables is None:
        cls._tables = user_tables(machine.check_conn)
    reset_database(machine.check_conn, cls._tables, truncate=truncate)


def bind_machine(base: type, database_url: str, *, name: str | None = None, **attrs) -> type:
    """Subclass ``base`` bound to one database: two autocommit connections
    (checks, client) shared by all examples of one run; ``close_machine`` ends them."""
    return type(
        name or base.__name__,
        (base,),
        {
            "database_url": database_url,
            "check_conn": psycopg.connect(database_url, autocommit=True),
            "client_conn": psycopg.connect(database_url, autocommit=True),
            **attrs,
        },
    )


def close_machine(machine_class: type) -> None:
    for attr in ("check_conn", "client_conn"):
        conn = machine_class.__dict__.get(attr)
        if conn is not None:
            conn.close()


def run_op(database_url: str, make_op) -> object:
    """Run one storage operation, ``make_op(client.core)``, in its own
    committed transaction (what the worker's runner does, without a worker)."""
    from awa.client import Client
    from awa.storage.drivers import run_in

    with Client(database_url) as client, psycopg.connect(database_url) as conn:
        return run_in(conn, make_op(client.core))
