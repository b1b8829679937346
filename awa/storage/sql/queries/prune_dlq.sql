SELECT __schema__.prune_dlq(%(now)s::timestamptz, %(retention)s::interval, %(limit)s::integer)
