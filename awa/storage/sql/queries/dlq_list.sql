SELECT * FROM __schema__.dlq_entries
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
ORDER BY dlq_at DESC, id DESC
LIMIT %(limit)s::integer
