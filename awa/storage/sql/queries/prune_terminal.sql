SELECT queue, state, deleted
FROM __schema__.prune_terminal(%(now)s::timestamptz, %(completed)s::interval, %(failed)s::interval,
                               %(queues)s::text[], %(queue_completed)s::interval[], %(queue_failed)s::interval[],
                               %(limit)s::integer)
