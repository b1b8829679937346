"""Named SQL statements from ``sql/queries/*.sql``, rendered once per schema.

The token ``__schema__`` is replaced by the schema quoted with
:class:`psycopg.sql.Identifier`; values always travel as parameters.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from psycopg import sql

from awa.storage.migrate import SCHEMA_TOKEN, validate_schema_name


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return resources.files("awa.storage").joinpath("sql", "queries", f"{name}.sql").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def quoted_schema(schema: str) -> str:
    return sql.Identifier(validate_schema_name(schema)).as_string(None)


@lru_cache(maxsize=None)
def query(schema: str, name: str) -> str:
    """The statement ``name`` for ``schema``, ready for ``cursor.execute``."""
    return _template(name).replace(SCHEMA_TOKEN, quoted_schema(schema))


def render(schema: str, text: str) -> str:
    """Render an inline statement (used for the COPY column list)."""
    return text.replace(SCHEMA_TOKEN, quoted_schema(schema))


def notify_channel(schema: str) -> str:
    """The one wake-up channel of a schema; the payload is the physical queue name."""
    return f"{validate_schema_name(schema)}_jobs"
