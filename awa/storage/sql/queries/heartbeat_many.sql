SELECT * FROM __schema__.heartbeat_jobs(%(ids)s::bigint[], %(leases)s::bigint[], %(now)s::timestamptz)
