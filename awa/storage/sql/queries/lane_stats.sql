-- Per lane: available count and the run_at of the lane's next job (the
-- lowest lane_seq above the claim cursor), both from the lane index.
SELECT e.queue, e.priority, e.enqueue_shard, e.next_seq, coalesce(c.claim_seq, 0) AS claim_seq,
       (SELECT count(*) FROM __schema__.jobs AS j
        WHERE j.queue = e.queue AND j.priority = e.priority AND j.enqueue_shard = e.enqueue_shard
          AND j.state = 'available') AS available,
       (SELECT j.run_at FROM __schema__.jobs AS j
        WHERE j.queue = e.queue AND j.priority = e.priority AND j.enqueue_shard = e.enqueue_shard
          AND j.state = 'available'
        ORDER BY j.lane_seq LIMIT 1) AS head_run_at,
       coalesce(%(now)s::timestamptz, now()) AS as_of
FROM __schema__.enqueue_heads AS e
LEFT JOIN __schema__.claim_heads AS c
       ON c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard
WHERE %(queue)s::text IS NULL OR e.queue = %(queue)s::text
ORDER BY e.queue, e.priority, e.enqueue_shard
