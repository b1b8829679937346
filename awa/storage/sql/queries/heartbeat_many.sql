SELECT * FROM __schema__.lease_batch(false, %(ids)s::bigint[], %(leases)s::bigint[], %(now)s::timestamptz)
