-- Per lane: the available count from the head counters, and the run_at of
-- the lane's next job (first segment past the claim cursor, primary-key scan).
SELECT e.queue, e.priority, e.enqueue_shard, e.next_seq, coalesce(c.claim_seq, 0) AS claim_seq,
       e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0) AS available,
       (SELECT j.run_at
        FROM __schema__.lane_segments AS g
        CROSS JOIN LATERAL (
            SELECT j.run_at FROM __schema__.jobs AS j
            WHERE j.id BETWEEN g.first_id + (greatest(g.first_seq, coalesce(c.claim_seq, 0) + 1) - g.first_seq)
                           AND g.first_id + (g.last_seq - g.first_seq)
              AND j.state = 'available'
              AND j.lane_seq = g.first_seq + (j.id - g.first_id)
              AND j.queue = e.queue AND j.priority = e.priority AND j.enqueue_shard = e.enqueue_shard
            ORDER BY j.id
            LIMIT 1
        ) AS j
        WHERE g.queue = e.queue AND g.priority = e.priority AND g.enqueue_shard = e.enqueue_shard
          AND g.last_seq > coalesce(c.claim_seq, 0)
        ORDER BY g.first_seq
        LIMIT 1) AS head_run_at,
       coalesce(%(now)s::timestamptz, now()) AS as_of
FROM __schema__.enqueue_heads AS e
LEFT JOIN __schema__.claim_heads AS c
       ON c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard
WHERE %(queue)s::text IS NULL OR e.queue = %(queue)s::text
ORDER BY e.queue, e.priority, e.enqueue_shard
