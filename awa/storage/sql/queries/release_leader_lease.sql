SELECT __schema__.release_leader_lease(%(role)s::text, %(holder)s::text)
