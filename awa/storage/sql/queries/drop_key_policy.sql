-- Drop a key policy: its open grants go with it (those attempts, and every
-- later job of its queues, are no longer governed). Under the exclusive
-- catalog lock, so no claim is between reading the policy and committing.
WITH locked AS (SELECT __schema__.key_catalog_lock(true)),
gone AS (
    DELETE FROM __schema__.key_policies WHERE name = %(name)s::text AND EXISTS (SELECT 1 FROM locked)
    RETURNING name
), grants AS (  -- the running attempts no longer hold grants
    UPDATE __schema__.jobs AS j SET granted_key = NULL
    WHERE j.state = 'running' AND j.granted_key IS NOT NULL
      AND __schema__.logical_queue(j.queue) IN (SELECT name FROM gone)
), parked AS (  -- the jobs stay available in their lanes; unkeyed claims take them
    DELETE FROM __schema__.key_parked WHERE __schema__.logical_queue(queue) IN (SELECT name FROM gone)
), lanes AS (  -- nothing is parked past their cursors any more
    UPDATE __schema__.claim_heads SET key_frontier = NULL
    WHERE key_frontier IS NOT NULL AND __schema__.logical_queue(queue) IN (SELECT name FROM gone)
)
SELECT name FROM gone
