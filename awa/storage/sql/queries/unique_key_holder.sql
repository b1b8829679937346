SELECT __schema__.unique_key_holder(%(key)s::bytea)
