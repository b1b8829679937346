SELECT __schema__.acquire_leader_lease(%(role)s::text, %(holder)s::text, %(ttl)s::interval)
