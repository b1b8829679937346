SELECT count(*) FROM __schema__.dlq_entries WHERE %(queue)s::text IS NULL OR queue = %(queue)s::text
