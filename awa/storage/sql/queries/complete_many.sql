SELECT * FROM __schema__.complete_jobs(%(ids)s::bigint[], %(leases)s::bigint[], %(now)s::timestamptz)
