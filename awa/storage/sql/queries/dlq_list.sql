SELECT * FROM __schema__.dlq_matching(
    %(kind)s::text, %(queue)s::text, %(tag)s::text, %(before_id)s::bigint, %(before_dlq_at)s::timestamptz)
ORDER BY dlq_at DESC, id DESC
LIMIT %(limit)s::integer
