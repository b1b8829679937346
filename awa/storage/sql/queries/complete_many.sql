-- Rows are locked in id order so two batches can never deadlock each other.
UPDATE __schema__.jobs AS j
SET state = 'completed', finalized_at = coalesce(%(now)s::timestamptz, now()),
    heartbeat_at = NULL, deadline_at = NULL
FROM (SELECT u.id, u.lease FROM unnest(%(ids)s::bigint[], %(leases)s::bigint[]) AS u(id, lease) ORDER BY u.id) AS u
WHERE j.id = u.id AND j.state = 'running' AND j.run_lease = u.lease
RETURNING j.id, j.run_lease
