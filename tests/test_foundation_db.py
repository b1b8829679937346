"""The test-database plumbing itself: isolation, template, migrations."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

from awa.storage.migrate import applied_versions, load_migrations, migrate


def test_each_test_gets_its_own_database(database_url, template_database):
    with psycopg.connect(database_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert name != template_database
    assert name.startswith("awa_t_")


def test_template_is_fully_migrated(conn):
    expected = [m.version for m in load_migrations()]
    assert applied_versions(conn, "awa") == expected


def test_writes_are_invisible_to_other_tests_databases(database_factory):
    first, second = database_factory(), database_factory()
    with psycopg.connect(first) as a:
        a.execute("CREATE TABLE public.marker (x int)")
        a.commit()
    with psycopg.connect(second) as b:
        assert b.execute("SELECT to_regclass('public.marker')").fetchone()[0] is None
    database_factory.drop(first)
    database_factory.drop(second)


def test_migrate_is_idempotent(database_factory):
    url = database_factory(migrated=False)
    with psycopg.connect(url) as conn:
        first = migrate(conn, "awa")
        second = migrate(conn, "awa")
    assert first == [m.version for m in load_migrations()]
    assert second == []


def test_migrate_into_custom_schema_quotes_the_identifier(database_factory):
    url = database_factory(migrated=False)
    with psycopg.connect(url) as conn:
        migrate(conn, "Tenant_A")
        assert applied_versions(conn, "Tenant_A") == [m.version for m in load_migrations()]
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert "Tenant_A" in schemas


@pytest.mark.parametrize("bad", ["", "1abc", "a;drop", "x" * 64, None])
def test_bad_schema_name_is_a_validation_error(database_factory, bad):
    from awa.errors import ValidationError

    url = database_factory(migrated=False)
    with psycopg.connect(url) as conn:
        with pytest.raises(ValidationError):
            migrate(conn, bad)
        # nothing was created
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'awa'").fetchone()[0] == 0


def test_concurrent_migrators_apply_each_migration_once(database_factory):
    url = database_factory(migrated=False)
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            with psycopg.connect(url) as conn:
                barrier.wait()
                results.append(migrate(conn, "awa"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in load_migrations()]
    with psycopg.connect(url) as conn:
        count = conn.execute(sql.SQL("SELECT count(*) FROM awa.schema_migrations")).fetchone()[0]
    assert count == len(load_migrations())
