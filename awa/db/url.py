"""Database URLs: resolving, describing without secrets, connecting with a clear error."""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from awa.errors import DatabaseUnavailable


def describe(database_url: str) -> str:
    """``host:port/dbname`` (user included, never the password) for error messages."""
    try:
        info = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port") or "5432"
    dbname = info.get("dbname") or info.get("user") or "postgres"
    user = info.get("user")
    who = f"{user}@" if user else ""
    return f"{who}{host}:{port}/{dbname}"


def with_dbname(database_url: str, dbname: str) -> str:
    """The same server and credentials, another database, as a ``postgresql://`` URL.

    ``database_url`` may be a URL or a ``key=value`` conninfo string; the result
    is always a URL, which psycopg and awa-pg's Rust driver (URLs only) both take.
    Options other than user, password, host, port and database travel as query
    parameters; so does a Unix socket directory given as the host.
    """
    params = conninfo_to_dict(database_url)
    params["dbname"] = dbname
    user = quote(str(params.pop("user", "") or ""), safe="")
    password = params.pop("password", None)
    host = str(params.pop("host", "") or "localhost")
    port = params.pop("port", None)
    name = quote(str(params.pop("dbname")), safe="")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    netloc = f"[{host}]" if ":" in host and not host.startswith("/") else host
    if host.startswith("/"):  # a Unix socket directory travels as a query parameter
        params["host"] = host
        netloc = ""
    query = f"?{urlencode(params, quote_via=quote)}" if params else ""  # libpq decodes %20, not +
    return f"postgresql://{auth}{netloc}{':' + str(port) if port else ''}/{name}{query}"


def explain_connect_error(database_url: str, exc: BaseException) -> DatabaseUnavailable:
    # The server's own message can echo parts of the conninfo; keep only its first
    # line and never the URL itself (which may carry a password).
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = conninfo_to_dict(database_url).get("password") if "://" in database_url or "=" in database_url else None
    if password:
        first_line = first_line.replace(str(password), "***")
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(database_url)}: {first_line}")


def connect_or_explain(database_url: str, *, connect_timeout: int = 10, **kwargs) -> psycopg.Connection:
    """``psycopg.connect`` that raises :class:`DatabaseUnavailable` with one clear line."""
    try:
        return psycopg.connect(database_url, connect_timeout=connect_timeout, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise explain_connect_error(database_url, exc) from None


def database_url_from_env() -> str | None:
    value = os.environ.get("DATABASE_URL", "").strip()
    return value or None
