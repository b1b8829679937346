UPDATE __schema__.jobs AS j
SET heartbeat_at = coalesce(%(now)s::timestamptz, now())
FROM (SELECT u.id, u.lease FROM unnest(%(ids)s::bigint[], %(leases)s::bigint[]) AS u(id, lease) ORDER BY u.id) AS u
WHERE j.id = u.id AND j.state = 'running' AND j.run_lease = u.lease
RETURNING j.id, j.run_lease
