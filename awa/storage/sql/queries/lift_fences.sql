SELECT __schema__.lift_fences(%(queue)s::text)
