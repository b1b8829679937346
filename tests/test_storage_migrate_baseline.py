"""Version 1 is one baseline (a directory of ordered parts, one transaction),
each SQL function written once; a schema built by the pre-release migrations
0001-0004 is refused with what to do, never run against.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources

import psycopg
import pytest

import awa.storage.migrate as migrate_module
from awa.errors import MigrationError
from awa.storage.migrate import Migration, applied_versions, ledger_mismatch, load_migrations, migrate, migrate_async

# What the runner recorded for a schema built before the baseline.
PRE_RELEASE = [
    (1, "routing_functions"),
    (2, "queue_storage_tables"),
    (3, "queue_storage_functions"),
    (4, "claim_with_per_queue_limits"),
]
_CREATE_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+__schema__\.(\w+)\s*\(", re.IGNORECASE)


def _migrate(url: str, driver: str) -> list[int]:
    if driver == "sync":
        with psycopg.connect(url) as c:
            return migrate(c, "awa")

    async def main() -> list[int]:
        async with await psycopg.AsyncConnection.connect(url) as aconn:
            return await migrate_async(aconn, "awa")

    return asyncio.run(main())


def _catalog(url: str) -> tuple[list, list]:
    """Everything in schema awa (relations and functions) and the ledger rows."""
    with psycopg.connect(url) as c:
        objects = c.execute(
            "SELECT 'rel', relname FROM pg_class WHERE relnamespace = 'awa'::regnamespace"
            " UNION ALL SELECT 'fn', proname FROM pg_proc WHERE pronamespace = 'awa'::regnamespace ORDER BY 1, 2"
        ).fetchall()
        ledger = c.execute("SELECT version, name FROM awa.schema_migrations ORDER BY version").fetchall()
    return objects, ledger


def _pre_release_schema(url: str) -> None:
    """The ledger the old runner left, beside a table the old files created."""
    with psycopg.connect(url) as c:
        c.execute("CREATE SCHEMA awa")
        c.execute(
            "CREATE TABLE awa.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        c.cursor().executemany("INSERT INTO awa.schema_migrations (version, name) VALUES (%s, %s)", PRE_RELEASE)
        c.execute("CREATE TABLE awa.jobs (id bigint PRIMARY KEY, args jsonb)")
        c.execute("INSERT INTO awa.jobs VALUES (7, '{}')")


# ------------------------------------------------------------ the baseline


def test_version_one_is_the_baseline_directory_in_part_order():
    [baseline] = load_migrations()
    assert (baseline.version, baseline.name, baseline.label) == (1, "baseline", "0001_baseline")
    names = [name for name, _ in baseline.parts]
    assert len(names) > 1 and names == sorted(names)
    assert all(re.fullmatch(r"\d{2}_[a-z0-9_]+\.sql", n) for n in names)
    assert baseline.text == "\n".join(text for _, text in baseline.parts)


def test_every_sql_function_is_created_exactly_once():
    created = [name for m in load_migrations() for name in _CREATE_FUNCTION.findall(m.text)]
    duplicated = sorted({n for n in created if created.count(n) > 1})
    assert duplicated == []
    # The pieces the claim, producers, promotion and lane_stats share.
    assert {"claim_jobs", "claim_jobs_limited", "bump_enqueue_heads", "lane_head_run_at"} <= set(created)


def test_the_shared_lane_head_pieces_are_called_not_copied():
    [baseline] = load_migrations()
    parts = dict(baseline.parts)
    text = baseline.text
    # The enqueue-head upsert appears once: in bump_enqueue_heads.
    assert len(re.findall(r"INSERT INTO __schema__\.enqueue_heads", text)) == 1
    assert "bump_enqueue_heads(" in parts["04_enqueue.sql"]
    # The lane-head lookup (segment, then the job at its lane number) appears
    # once, and once more as the keyed claim's bounded window of candidates
    # (many rows with their keys, not the head: 15_key_concurrency.sql).
    lookup = r"j\.lane_seq = g\.first_seq \+ \(j\.id - g\.first_id\)"
    assert len(re.findall(lookup, text)) == 2
    assert len(re.findall(lookup, parts["15_key_concurrency.sql"])) == 1
    assert "lane_head_run_at(" in parts["05_claim.sql"]
    lane_stats = resources.files("awa.storage").joinpath("sql", "queries", "lane_stats.sql").read_text()
    assert "lane_head_run_at(" in lane_stats and "lane_segments" not in lane_stats


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_failing_part_rolls_back_the_whole_version(database_factory, monkeypatch, driver):
    url = database_factory(migrated=False)
    parts = (
        ("01_first.sql", "CREATE TABLE __schema__.part_one (x int);"),
        ("02_second.sql", "CREATE TABLE __schema__.part_two (x int); SELECT * FROM __schema__.no_such_table;"),
    )
    broken = Migration(9999, "broken_parts", "\n".join(t for _, t in parts), parts)
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: load_migrations() + [broken])
    with pytest.raises(MigrationError) as caught:
        _migrate(url, driver)
    assert str(caught.value).startswith("migration 9999_broken_parts failed (in 02_second.sql): ")
    assert "no_such_table" in str(caught.value)
    with psycopg.connect(url) as c:
        assert applied_versions(c, "awa") == [m.version for m in load_migrations()]
        tables = {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'awa'")}
    assert not {"part_one", "part_two"} & tables
    assert "jobs" in tables  # the baseline before it stays applied


# ------------------------------------------------ schemas built by other files


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_schema_built_by_the_pre_release_migrations_is_refused_unchanged(database_factory, driver):
    url = database_factory(migrated=False)
    _pre_release_schema(url)
    before = _catalog(url)
    with pytest.raises(MigrationError) as caught:
        _migrate(url, driver)
    message = str(caught.value)
    for version, name in PRE_RELEASE:
        assert f"{version:04d}_{name}" in message
    assert "0001_baseline" in message
    assert "replaced by one baseline" in message
    assert 'DROP SCHEMA "awa" CASCADE' in message and "migrate again" in message
    assert _catalog(url) == before  # nothing created, nothing recorded
    with psycopg.connect(url) as c:
        assert c.execute("SELECT id FROM awa.jobs").fetchall() == [(7,)]

    # Doing what the message says works.
    with psycopg.connect(url) as c:
        c.execute('DROP SCHEMA "awa" CASCADE')
    assert _migrate(url, driver) == [m.version for m in load_migrations()]


def test_a_partly_pre_release_ledger_is_refused_too(database_factory):
    url = database_factory(migrated=False)
    with psycopg.connect(url) as c:
        c.execute("CREATE SCHEMA awa")
        c.execute("CREATE TABLE awa.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())")
        c.execute("INSERT INTO awa.schema_migrations (version, name) VALUES (1, 'routing_functions')")
    with pytest.raises(MigrationError, match="replaced by one baseline"):
        _migrate(url, "sync")


def test_ledger_mismatch_names_what_differs():
    shipped = load_migrations()
    matching = [(m.version, m.name) for m in shipped]
    assert ledger_mismatch("awa", matching, shipped) is None
    assert ledger_mismatch("awa", [], shipped) is None
    # A version this package does not ship (a later release) is not a mismatch by itself.
    assert ledger_mismatch("awa", matching + [(999, "from_a_later_release")], shipped) is None
    other = ledger_mismatch("Tenant_A", [(1, "something_else")], shipped)
    assert other is not None
    assert "0001_something_else" in other and "0001_baseline" in other
    assert 'DROP SCHEMA "Tenant_A" CASCADE' in other
    assert "replaced by one baseline" not in other  # not the pre-release layout
    assert "replaced by one baseline" in ledger_mismatch("awa", PRE_RELEASE, shipped)
