-- The newest migration recorded in the schema's ledger (0 when empty).
SELECT coalesce(max(version), 0) FROM __schema__.schema_migrations
