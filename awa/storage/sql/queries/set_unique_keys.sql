SELECT __schema__.set_unique_keys(%(ids)s::bigint[], %(keys)s::bytea[], %(states)s::bit(8)[])
