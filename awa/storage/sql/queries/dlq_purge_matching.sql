-- awa-pg's purge_dlq: delete the dead-letter entries a filter matches.
DELETE FROM __schema__.dlq_entries
WHERE id IN (
    SELECT id FROM __schema__.dlq_matching(
        %(kind)s::text, %(queue)s::text, %(tag)s::text, %(before_id)s::bigint, %(before_dlq_at)s::timestamptz))
