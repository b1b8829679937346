"""Is the schema migrated? One check per client, before its first operation (no I/O).

A client on a database whose schema is missing, or older than the
migrations this package ships, raises :class:`~awa.errors.SchemaNotMigrated`
(awa-pg's name and text) instead of a bare "relation does not exist" from
its first query. The check is two catalog-cheap statements, run once: when
it passes, :attr:`SchemaCheckOps.schema_verified` is set on the core and
every later operation runs exactly as before (no extra statement). When it
fails nothing is remembered, so the next call checks again and works once
``migrate()`` has run. A newer schema (a rolling deploy) passes.
"""

from __future__ import annotations

from functools import lru_cache

from awa.errors import SchemaNotMigrated
from awa.storage.migrate import load_migrations
from awa.storage.ops import Op, OpsBase, Query
from awa.storage.queries import quoted_schema


@lru_cache(maxsize=1)
def shipped_version() -> int:
    """The newest migration version this package ships."""
    return max(m.version for m in load_migrations())


def not_migrated(schema: str, found: int) -> SchemaNotMigrated:
    expected = shipped_version()
    return SchemaNotMigrated(
        f"schema not migrated: expected version {expected}, found {found} (schema {schema!r}); "
        "run 'awa migrate' or client.migrate() first"
    )


class SchemaCheckOps(OpsBase):
    # Set once the check passed; shared by the client and its worker runtime.
    schema_verified: bool = False

    def require_migrated(self) -> Op:
        """Raise :class:`SchemaNotMigrated` unless the ledger records at least
        the shipped version; the recorded version."""
        res = yield Query(self.q("schema_ledger"), {"ledger": f"{quoted_schema(self.schema)}.schema_migrations"})
        found = 0
        if res.rows[0][0]:
            res = yield Query(self.q("schema_version"), {})
            found = int(res.rows[0][0])
        if found < shipped_version():
            raise not_migrated(self.schema, found)
        self.schema_verified = True
        return found

    def checked(self, op: Op) -> Op:
        """``op``, preceded by :meth:`require_migrated` until a check passed."""
        if self.schema_verified:
            return op
        return self._check_then(op)

    def _check_then(self, op: Op) -> Op:
        try:
            yield from self.require_migrated()
        except BaseException:
            op.close()
            raise
        return (yield from op)
