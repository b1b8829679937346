"""One migration plan, two drivers: ``migrate`` (sync) and ``migrate_async``.

Both clients must migrate on their OWN connections (pool or single
connection), never by reconnecting from a DSN string: a DSN loses the
password, the pool's ``kwargs`` and any session state such as ``SET ROLE``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import awa.storage.migrate as migrate_module
from awa.client import AsyncClient, Client
from awa.errors import MigrationError, ValidationError
from awa.storage.migrate import (
    Migration,
    applied_versions,
    applied_versions_async,
    load_migrations,
    migrate,
    migrate_async,
)

ALL = [m.version for m in load_migrations()]
IDLE = psycopg.pq.TransactionStatus.IDLE


def _recorded(url: str, schema: str = "awa") -> list[int]:
    with psycopg.connect(url) as c:
        return applied_versions(c, schema)


def _owner_of_schema(url: str, schema: str = "awa") -> str:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    assert row is not None, f"schema {schema} was not created"
    return row[0]


# ------------------------------------------------------- clients, fresh database


@pytest.mark.parametrize("kind", ["url", "pool", "connection"])
def test_async_client_migrates_a_fresh_database_once(database_factory, kind):
    url = database_factory(migrated=False)

    async def main() -> tuple[list[int], list[int]]:
        if kind == "url":
            async with AsyncClient(url) as client:
                return await client.migrate(), await client.migrate()
        if kind == "pool":
            async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
                client = AsyncClient(pool)
                return await client.migrate(), await client.migrate()
        aconn = await psycopg.AsyncConnection.connect(url)
        async with aconn:
            client = AsyncClient(aconn)
            first, second = await client.migrate(), await client.migrate()
            # The caller's connection is left as it was found: usable, no open transaction.
            assert aconn.info.transaction_status == IDLE and aconn.autocommit is False
            assert await applied_versions_async(aconn) == ALL
            return first, second

    first, second = asyncio.run(main())
    assert first == ALL
    assert second == []
    assert _recorded(url) == ALL


@pytest.mark.parametrize("kind", ["url", "pool", "connection"])
def test_sync_client_migrates_a_fresh_database_once(database_factory, kind):
    url = database_factory(migrated=False)
    if kind == "url":
        with Client(url) as client:
            first, second = client.migrate(), client.migrate()
    elif kind == "pool":
        with ConnectionPool(url, min_size=1, max_size=2) as pool:
            client = Client(pool)
            first, second = client.migrate(), client.migrate()
    else:
        with psycopg.connect(url, autocommit=True) as c:
            client = Client(c)
            first, second = client.migrate(), client.migrate()
            assert c.info.transaction_status == IDLE and c.autocommit is True
    assert first == ALL
    assert second == []
    assert _recorded(url) == ALL


@pytest.mark.parametrize("autocommit", [False, True])
def test_migrate_async_commits_each_file_and_keeps_autocommit(database_factory, autocommit):
    url = database_factory(migrated=False)

    async def main() -> list[int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=autocommit) as aconn:
            applied = await migrate_async(aconn, "Tenant_B")
            assert aconn.autocommit is autocommit
            assert aconn.info.transaction_status == IDLE
            return applied

    assert asyncio.run(main()) == ALL
    # Visible from another session: committed, not left in an open transaction.
    assert _recorded(url, "Tenant_B") == ALL


# ------------------------------------------- the connection given is the one used


def test_async_pool_kwargs_are_honoured(database_factory, pg_server_url):
    """The database name reaches the pool ONLY through ``kwargs``.

    The old ``AsyncClient.migrate()`` reconnected with ``pool.conninfo`` alone,
    which names a database that does not exist, and failed.
    """
    url = database_factory(migrated=False)
    real_db = conninfo_to_dict(url)["dbname"]
    decoy = make_conninfo(pg_server_url, dbname=f"awa_no_such_db_{uuid.uuid4().hex[:8]}")

    async def main() -> list[int]:
        pool = AsyncConnectionPool(decoy, kwargs={"dbname": real_db}, min_size=1, max_size=1, open=False)
        async with pool:
            return await AsyncClient(pool).migrate()

    assert asyncio.run(main()) == ALL
    assert _recorded(url) == ALL


def test_sync_pool_kwargs_are_honoured(database_factory, pg_server_url):
    url = database_factory(migrated=False)
    real_db = conninfo_to_dict(url)["dbname"]
    decoy = make_conninfo(pg_server_url, dbname=f"awa_no_such_db_{uuid.uuid4().hex[:8]}")
    with ConnectionPool(decoy, kwargs={"dbname": real_db}, min_size=1, max_size=1) as pool:
        assert Client(pool).migrate() == ALL
    assert _recorded(url) == ALL


@pytest.fixture
def scratch_role(database_factory, pg_server_url) -> Iterator[tuple[str, str, str]]:
    """(database url, role name, password): a LOGIN role that may create schemas in a fresh database.

    Roles are cluster-wide, so the name is unique and the role is dropped afterwards.
    """
    url = database_factory(migrated=False)
    role = f"awa_mig_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    db = conninfo_to_dict(url)["dbname"]
    try:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
            admin.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
            admin.execute(
                sql.SQL("GRANT CREATE, CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(role))
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        pytest.skip(f"the test server's user may not create roles: {exc}")
    try:
        yield url, role, password
    finally:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_async_client_migrates_on_its_own_connection_session_state(scratch_role):
    """``SET ROLE`` lives only in this session; objects created by the migration
    must belong to that role. Reconnecting from ``conn.info.dsn`` (the old code)
    would create them as the login user instead, whatever the server's auth method.
    """
    url, role, _ = scratch_role

    async def main() -> list[int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as aconn:
            await aconn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            return await AsyncClient(aconn).migrate()

    applied = asyncio.run(main())
    assert _owner_of_schema(url) == role
    with psycopg.connect(url) as c:
        owner = c.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'awa' AND tablename = 'schema_migrations'"
        ).fetchone()
    assert owner == (role,)
    assert applied == ALL


def test_sync_client_migrates_on_its_own_connection_session_state(scratch_role):
    url, role, _ = scratch_role
    with psycopg.connect(url) as c:
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        c.commit()
        applied = Client(c).migrate()
    assert _owner_of_schema(url) == role
    assert applied == ALL


def test_password_given_only_to_the_connection_is_enough(scratch_role):
    """The password goes to ``connect()`` / the pool's kwargs, never into a URL.

    On a server that checks passwords the old code (reconnecting from the
    password-less ``conn.info.dsn`` or ``pool.conninfo``) could not log in; on a
    ``trust`` server this still checks that migrate works as a non-superuser role.
    """
    url, role, password = scratch_role
    as_role = make_conninfo(url, user=role)  # deliberately without the password

    async def main() -> tuple[list[int], list[int]]:
        async with await psycopg.AsyncConnection.connect(as_role, password=password) as aconn:
            first = await AsyncClient(aconn).migrate()
        pool = AsyncConnectionPool(as_role, kwargs={"password": password}, min_size=1, max_size=1, open=False)
        async with pool:
            second = await AsyncClient(pool).migrate()
        return first, second

    first, second = asyncio.run(main())
    assert first == ALL and second == []
    assert _owner_of_schema(url) == role


# ------------------------------------------------ errors: same text, both drivers


def test_connection_inside_a_transaction_is_refused_and_nothing_changes(database_factory):
    url = database_factory(migrated=False)
    with psycopg.connect(url) as c:
        c.execute("SELECT 1")  # opens a transaction (autocommit off)
        with pytest.raises(ValidationError, match="no transaction in progress"):
            migrate(c, "awa")
        with pytest.raises(ValidationError, match="no transaction in progress"):
            Client(c).migrate()
        c.rollback()

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(url) as aconn:
            await aconn.execute("SELECT 1")
            with pytest.raises(ValidationError, match="no transaction in progress"):
                await migrate_async(aconn, "awa")
            with pytest.raises(ValidationError, match="no transaction in progress"):
                await AsyncClient(aconn).migrate()

    asyncio.run(main())
    assert _recorded(url) == []
    with psycopg.connect(url) as c:
        assert c.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'awa'").fetchone()[0] == 0


def test_bad_schema_is_refused_by_the_async_driver_too(database_factory):
    url = database_factory(migrated=False)

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(url) as aconn:
            with pytest.raises(ValidationError, match="schema must be"):
                await migrate_async(aconn, "a;drop")

    asyncio.run(main())
    with psycopg.connect(url) as c:
        user_schemas = c.execute(
            "SELECT count(*) FROM pg_namespace"
            " WHERE nspname NOT LIKE 'pg%' AND nspname NOT IN ('public', 'information_schema')"
        ).fetchone()[0]
    assert user_schemas == 0


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_failing_file_rolls_back_alone_with_the_same_error(database_factory, monkeypatch, driver):
    """Each file is its own transaction: the good extra file stays applied and
    recorded, the broken one leaves no row and no partial effect."""
    url = database_factory(migrated=False)
    extra = [
        Migration(9998, "good_marker", "CREATE TABLE __schema__.marker (x int)"),
        Migration(9999, "broken", "CREATE TABLE __schema__.half (x int); SELECT * FROM __schema__.no_such_table"),
    ]
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: load_migrations() + extra)

    if driver == "sync":
        with psycopg.connect(url) as c, pytest.raises(MigrationError) as caught:
            migrate(c, "awa")
    else:

        async def main() -> None:
            async with await psycopg.AsyncConnection.connect(url) as aconn:
                await migrate_async(aconn, "awa")

        with pytest.raises(MigrationError) as caught:
            asyncio.run(main())
    assert str(caught.value).startswith("migration 9999_broken failed: ")
    assert "no_such_table" in str(caught.value)
    assert _recorded(url) == ALL + [9998]
    with psycopg.connect(url) as c:
        tables = {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'awa'")}
    assert "marker" in tables
    assert "half" not in tables


# --------------------------------------------------------------- concurrency


def test_concurrent_sync_and_async_migrators_record_each_version_once(database_factory):
    url = database_factory(migrated=False)
    results: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sync_side() -> None:
        try:
            with psycopg.connect(url) as c:
                start.wait()
                results.append(migrate(c, "awa"))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    async def async_migrators() -> list[list[int]]:
        conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(2)]
        try:
            await asyncio.to_thread(start.wait)
            return list(await asyncio.gather(*(migrate_async(c, "awa") for c in conns)))
        finally:
            for c in conns:
                await c.close()

    def async_side() -> None:
        try:
            results.extend(asyncio.run(async_migrators()))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=sync_side), threading.Thread(target=async_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 3
    assert sorted(v for r in results for v in r) == ALL  # every version applied by exactly one migrator
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT version, count(*) FROM awa.schema_migrations GROUP BY version ORDER BY version")
        assert [(v, n) for v, n in rows] == [(v, 1) for v in ALL]
