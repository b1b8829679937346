-- awa-pg's bulk_move_failed_to_dlq: every failed job of a kind and/or queue
-- into the dead-letter table through dead_letter, in id order; the count moved.
SELECT count(*) FILTER (WHERE __schema__.dead_letter(f.id, %(reason)s::text, %(now)s::timestamptz))
FROM (
    SELECT id FROM __schema__.jobs
    WHERE state = 'failed'
      AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
    ORDER BY id
) AS f
