"""SchemaNotMigrated (awa-pg's name and text): a client on a database whose
schema is missing or older than the shipped migrations says so, on real
PostgreSQL, and works once migrated."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

import awa
from awa.client import AsyncClient, Client
from awa.storage.schema_check import shipped_version

EXPECTED = f"^schema not migrated: expected version {shipped_version()}, found 0 \\(schema 'awa'\\); run 'awa migrate'"


@pytest.fixture
def bare_url(database_factory):
    url = database_factory(migrated=False)
    yield url
    database_factory.drop(url)


def test_a_fresh_database_raises_for_insert_claim_admin_and_start(bare_url):
    with Client(bare_url) as client:
        with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED) as caught:
            client.insert({"n": 1}, kind="k", queue="q")
        assert isinstance(caught.value, awa.AwaError)
        with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
            client.claim("q", 1)
        with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
            client.retry_failed(queue="q")
        with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
            client.queue_stats()

        @client.task("k", queue="q")
        def handle(job):
            return None

        with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
            client.start([("q", 1)])
        assert client.worker_runtime is None
        assert client.health_check().postgres_connected is True  # reachable, just not migrated

        assert client.migrate() == [shipped_version()]
        job = client.insert({"n": 1}, kind="k", queue="q")
        assert client.get_job(job.id).state == awa.JobState.Available
        [claimed] = client.claim("q", 1)
        assert claimed.id == job.id


def test_the_async_client_raises_too_and_works_after_migrate(bare_url):
    async def main():
        async with AsyncClient(bare_url) as client:
            with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
                await client.insert({"n": 1}, kind="k", queue="q")
            with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
                await client.claim("q", 1)
            with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
                await client.dlq_depth()

            @client.task("k", queue="q")
            async def handle(job):
                return None

            with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
                await client.start([("q", 1)])
            await client.migrate()
            job = await client.insert({"n": 1}, kind="k", queue="q")
            assert (await client.get_job(job.id)).id == job.id

    asyncio.run(main())


def test_a_schema_with_an_empty_ledger_is_older_than_the_package(bare_url):
    with psycopg.connect(bare_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA awa")
        conn.execute("CREATE TABLE awa.schema_migrations (version integer PRIMARY KEY, name text NOT NULL)")
    with Client(bare_url) as client, pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
        client.list_jobs()


def test_inside_a_transaction_the_check_leaves_the_transaction_usable(bare_url):
    with Client(bare_url) as client:
        with client.transaction() as tx:
            with pytest.raises(awa.SchemaNotMigrated, match=EXPECTED):
                tx.insert({"n": 1}, kind="k", queue="q")
            assert tx.fetch_one("SELECT 1 AS one") == {"one": 1}  # not aborted


class CountingCursor(psycopg.Cursor):
    statements = 0

    def execute(self, *args, **kwargs):
        CountingCursor.statements += 1
        return super().execute(*args, **kwargs)


def _statements(fn) -> int:
    before = CountingCursor.statements
    fn()
    return CountingCursor.statements - before


def test_the_check_runs_once_then_costs_no_statement(database_url):
    with psycopg.connect(database_url, autocommit=True, cursor_factory=CountingCursor) as conn:
        client = Client(conn)
        assert not client.core.schema_verified
        first = _statements(lambda: client.insert({"n": 1}, kind="k", queue="q"))
        assert client.core.schema_verified
        second = _statements(lambda: client.insert({"n": 2}, kind="k", queue="q"))
        third = _statements(lambda: client.claim("q", 1))
        # The first insert: the check's two statements, then the one-statement
        # insert, which writes nothing into a lane used for the first time, and
        # insert_job (ADR 0035); later ones: the one statement.
        assert (first, second, third) == (2 + 2, 1, 1)


def test_a_migrated_database_passes_for_a_worker_that_shares_the_core(database_url):
    with Client(database_url) as client:
        client.insert({"n": 1}, kind="k", queue="w")
        assert client.core.schema_verified
        done = []

        @client.task("k", queue="w")
        def handle(job):
            done.append(job.id)

        client.start([("w", 1)], poll_interval_ms=20)
        try:
            deadline = time.monotonic() + 20
            while not done and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            client.shutdown()
        assert len(done) == 1


def test_objects_missing_after_the_check_raise_schema_not_migrated(database_url):
    with Client(database_url) as client:
        client.insert({"n": 1}, kind="k", queue="q")
        assert client.core.schema_verified
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP FUNCTION awa.dlq_matching")  # as a schema of an earlier baseline build lacks it
        with pytest.raises(awa.SchemaNotMigrated, match=r"^schema not migrated: function awa\.dlq_matching\(.*does not exist \(schema 'awa'\)") as caught:
            client.list_dlq(kind="k")
        assert isinstance(caught.value.__cause__, psycopg.errors.UndefinedFunction)
        with client.transaction() as tx:  # the application's own SQL is not translated
            with pytest.raises(awa.DatabaseError, match="does not exist"):
                tx.execute("SELECT * FROM awa.no_such_table")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA awa CASCADE")
        with pytest.raises(awa.SchemaNotMigrated, match="^schema not migrated: .*awa.* does not exist"):
            client.insert({"n": 2}, kind="k", queue="q")
        with pytest.raises(awa.SchemaNotMigrated, match="^schema not migrated: "):
            client.claim("q", 1)


def test_the_async_client_translates_missing_objects_too(database_url):
    async def main():
        async with AsyncClient(database_url) as client:
            await client.dlq_depth()
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("DROP TABLE awa.dlq_entries CASCADE")
            with pytest.raises(awa.SchemaNotMigrated, match=r'^schema not migrated: relation "awa\.dlq_entries" does not exist'):
                await client.dlq_depth()

    asyncio.run(main())
