SELECT * FROM __schema__.dlq_entries WHERE id = %(id)s::bigint
