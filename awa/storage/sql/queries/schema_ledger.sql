-- Whether the schema's migration ledger exists (by name: no error when the
-- schema or the table is missing).
SELECT to_regclass(%(ledger)s::text) IS NOT NULL
