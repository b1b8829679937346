-- awa-pg's bulk_retry_from_dlq: every matching entry back to work through
-- retry_from_dlq (attempts reset, its lane, a new lane number), in id order.
-- A unique conflict aborts the statement: nothing is retried.
SELECT count(*)
FROM (
    SELECT id FROM __schema__.dlq_matching(%(kind)s::text, %(queue)s::text, %(tag)s::text, NULL, NULL)
    ORDER BY id
) AS d
CROSS JOIN LATERAL __schema__.retry_from_dlq(
    d.id, %(now)s::timestamptz, NULL, NULL, NULL, NULL, %(channel)s::text) AS r
