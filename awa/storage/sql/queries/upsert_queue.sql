-- Each setting is NULL when the call leaves it unchanged.
INSERT INTO __schema__.queues AS q (name, paused, enqueue_shards, dlq_enabled)
VALUES (%(queue)s::text, coalesce(%(paused)s::boolean, false), coalesce(%(shards)s::smallint, 1),
        coalesce(%(dlq)s::boolean, false))
ON CONFLICT (name) DO UPDATE SET
    paused = coalesce(%(paused)s::boolean, q.paused),
    enqueue_shards = coalesce(%(shards)s::smallint, q.enqueue_shards),
    dlq_enabled = coalesce(%(dlq)s::boolean, q.dlq_enabled),
    updated_at = now()
RETURNING name, paused, enqueue_shards, dlq_enabled
