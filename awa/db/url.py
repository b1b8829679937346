"""Database URLs: resolving, describing without secrets, connecting with a clear error."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, unquote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from awa.errors import DatabaseUnavailable


_SCHEMES = ("postgresql", "postgres")
_URL_SCHEME = re.compile(r"\A\s*([A-Za-z][A-Za-z0-9+.-]*)://")
# user:password@ in a URL of any scheme (psycopg may not parse it at all)
_URL_PASSWORD = re.compile(r"://[^/@?#:]*:([^@/?#]*)@")
# password=... in a key=value conninfo string, quoted or not
_KV_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]*)")


def _secrets(database_url: str) -> list[str]:
    """Every spelling of the password ``database_url`` may carry (raw, decoded)."""
    found: set[str] = set()
    for m in _URL_PASSWORD.finditer(database_url):
        found.add(m.group(1))
        try:
            found.add(unquote(m.group(1), errors="strict"))
        except UnicodeDecodeError:
            pass
    for m in _KV_PASSWORD.finditer(database_url):
        value = m.group(1)
        found.add(value)
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            found.add(value[1:-1])
            found.add(value[1:-1].replace("\\'", "'").replace("\\\\", "\\"))
    try:
        password = conninfo_to_dict(database_url).get("password")
    except psycopg.Error:
        password = None
    if password:
        found.add(str(password))
    return sorted((f for f in found if f), key=len, reverse=True)  # longest first: no partial leftovers


def redact(text: str, database_url: str) -> str:
    """``text`` with every spelling of the URL's password replaced by ``***``."""
    for secret in _secrets(database_url):
        text = text.replace(secret, "***")
    return text


def describe(database_url: str) -> str:
    """``host:port/dbname`` (user included, never the password) for error messages."""
    try:
        info = conninfo_to_dict(database_url)
    except psycopg.Error:
        return "<unparseable DATABASE_URL>"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port") or "5432"
    dbname = info.get("dbname") or info.get("user") or "postgres"
    user = info.get("user")
    who = f"{user}@" if user else ""
    return redact(f"{who}{host}:{port}/{dbname}", database_url)


def check_url(database_url: object) -> str:
    """``database_url`` when psycopg can parse it as a PostgreSQL URL or
    conninfo string; else :class:`DatabaseUnavailable` with a message that
    never contains the password (psycopg's own parse errors echo the URL)."""
    if not isinstance(database_url, str):
        raise DatabaseUnavailable(f"the database URL must be a string, got {type(database_url).__name__}")
    m = _URL_SCHEME.match(database_url)
    if m is not None and m.group(1).lower() not in _SCHEMES:
        raise DatabaseUnavailable(
            f"the database URL is not a PostgreSQL URL (scheme {m.group(1)!r}); "
            "expected postgresql://user@host:port/dbname or a key=value conninfo string"
        )
    try:
        conninfo_to_dict(database_url)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = redact(first, database_url).replace(database_url, "<the URL>")
        raise DatabaseUnavailable(f"the database URL cannot be parsed: {first}") from None
    return database_url


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
    first_line = redact(first_line.replace(database_url, "<the URL>"), database_url)
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(database_url)}: {first_line}")


def connect_or_explain(database_url: str, *, connect_timeout: int = 10, **kwargs) -> psycopg.Connection:
    """``psycopg.connect`` that raises :class:`DatabaseUnavailable` with one clear line."""
    check_url(database_url)
    try:
        return psycopg.connect(database_url, connect_timeout=connect_timeout, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise explain_connect_error(database_url, exc) from None


def database_url_from_env() -> str | None:
    value = os.environ.get("DATABASE_URL", "").strip()
    return value or None
