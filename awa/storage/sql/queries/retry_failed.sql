-- awa-pg's retry_failed: every failed job of one kind or one queue back to
-- work, each through retry_job (attempts reset, a new number in its lane).
SELECT r.*
FROM (
    SELECT id FROM __schema__.jobs
    WHERE state = 'failed'
      AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
    ORDER BY id
    FOR UPDATE
) AS f
CROSS JOIN LATERAL __schema__.retry_job(f.id, %(now)s::timestamptz, NULL, %(channel)s::text) AS r
ORDER BY r.id
