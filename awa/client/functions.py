"""awa-pg's module-level functions: ``migrate``, ``migrations``, ``migrations_range``,
``current_migration_version`` (``derive_kind`` lives in :mod:`awa.storage.validate`).

Migration SQL is shown with the schema token rendered as ``awa`` (the default
schema); ``awa migrate`` applies it to any schema.
"""

from __future__ import annotations

from awa.errors import ValidationError
from awa.storage.migrate import SCHEMA_TOKEN, load_migrations, migrate_async


def migrations() -> list[tuple[int, str, str]]:
    """Every shipped migration as ``(version, description, sql)``."""
    return [(m.version, m.name, m.text.replace(SCHEMA_TOKEN, "awa")) for m in load_migrations()]


def migrations_range(from_version: int, to_version: int) -> list[tuple[int, str, str]]:
    """The migrations after ``from_version`` up to ``to_version`` (inclusive)."""
    return [m for m in migrations() if from_version < m[0] <= to_version]


def current_migration_version() -> int:
    """The newest migration this package ships."""
    return max(m.version for m in load_migrations())


async def migrate(database_url: str, schema: str = "awa") -> list[int]:
    """awa-pg's ``await awa.migrate(url)``: apply pending migrations; the versions applied."""
    import psycopg

    if not isinstance(database_url, str):
        raise ValidationError("migrate() needs a database URL")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        return await migrate_async(conn, schema)
