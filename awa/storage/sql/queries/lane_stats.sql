-- Per lane: the available count from the head counters plus the committed
-- single inserts not numbered yet (ADR 0028), and the run_at of the lane's
-- next job (lane_head_run_at, the same lookup claims age by).
SELECT e.queue, e.priority, e.enqueue_shard, e.next_seq, coalesce(c.claim_seq, 0) AS claim_seq,
       e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0)
         + (SELECT count(*) FROM __schema__.lane_pending AS p
            JOIN __schema__.jobs AS j ON j.id = p.job_id AND j.state = 'available'
            WHERE p.queue = e.queue AND p.priority = e.priority AND p.enqueue_shard = e.enqueue_shard) AS available,
       __schema__.lane_head_run_at(e.queue, e.priority, e.enqueue_shard, coalesce(c.claim_seq, 0)) AS head_run_at,
       coalesce(%(now)s::timestamptz, now()) AS as_of
FROM __schema__.enqueue_heads AS e
LEFT JOIN __schema__.claim_heads AS c
       ON c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard
WHERE %(queue)s::text IS NULL OR e.queue = %(queue)s::text
ORDER BY e.queue, e.priority, e.enqueue_shard
