UPDATE __schema__.jobs
SET heartbeat_at = coalesce(%(now)s::timestamptz, now()),
    progress = CASE WHEN %(set_progress)s::boolean THEN %(progress)s::jsonb ELSE progress END
WHERE id = %(id)s::bigint AND state = 'running' AND run_lease = %(lease)s::bigint
RETURNING id
