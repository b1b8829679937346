"""awa.db.url.with_dbname: one server, another database, always as a URL (tests and bench use it)."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from awa.db.url import with_dbname


def test_a_url_keeps_its_server_and_user():
    assert (
        with_dbname("postgresql://postgres@127.0.0.1:5432/postgres", "x_1")
        == "postgresql://postgres@127.0.0.1:5432/x_1"
    )


def test_a_conninfo_string_becomes_a_url_with_the_password_quoted():
    assert with_dbname("host=h user=u password=p@ss port=7 dbname=a", "b") == "postgresql://u:p%40ss@h:7/b"


def test_socket_directory_and_other_options_survive_the_round_trip():
    source = "host='/tmp/pg sock' port=5433 user=u dbname=a sslmode=disable application_name=x"
    url = with_dbname(source, "b c")
    assert url.startswith("postgresql://")
    assert conninfo_to_dict(url) == {**conninfo_to_dict(source), "dbname": "b c"}


def test_the_url_reaches_that_database(database_url, pg_server_url):
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(with_dbname(pg_server_url, name)) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
