SELECT __schema__.promote_due(%(now)s::timestamptz, %(limit)s::integer, %(channel)s::text)
