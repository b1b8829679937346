-- Every available job has an id inside a lane segment past its lane's claim
-- cursor, or a lane_pending row (not numbered yet, ADR 0028), so these bounds
-- narrow a listing of available jobs to the ids that can hold one (the jobs
-- table has no index on available jobs).
SELECT min(lo), max(hi)
FROM (
    SELECT g.first_id + greatest(coalesce(c.claim_seq, 0) + 1 - g.first_seq, 0) AS lo,
           g.first_id + (g.last_seq - g.first_seq) AS hi
    FROM __schema__.lane_segments AS g
    LEFT JOIN __schema__.claim_heads AS c
           ON c.queue = g.queue AND c.priority = g.priority AND c.enqueue_shard = g.enqueue_shard
    WHERE g.last_seq > coalesce(c.claim_seq, 0)
      AND (%(queue)s::text IS NULL OR g.queue = %(queue)s::text)
    UNION ALL
    SELECT p.job_id, p.job_id
    FROM __schema__.lane_pending AS p
    WHERE %(queue)s::text IS NULL OR p.queue = %(queue)s::text
) AS r
