SELECT * FROM __schema__.lease_batch(true, %(ids)s::bigint[], %(leases)s::bigint[], %(now)s::timestamptz)
