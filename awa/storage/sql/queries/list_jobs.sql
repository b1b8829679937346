SELECT * FROM __schema__.jobs
WHERE (%(state)s::text IS NULL OR state = %(state)s::__schema__.job_state)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
ORDER BY id DESC
LIMIT %(limit)s::integer
