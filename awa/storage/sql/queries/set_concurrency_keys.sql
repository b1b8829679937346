SELECT __schema__.set_concurrency_keys(%(ids)s::bigint[], %(keys)s::bytea[])
