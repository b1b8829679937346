UPDATE __schema__.jobs
SET state = 'cancelled', finalized_at = coalesce(%(now)s::timestamptz, now()),
    heartbeat_at = NULL, deadline_at = NULL
WHERE id = %(id)s::bigint AND state = 'running' AND run_lease = %(lease)s::bigint
RETURNING id
