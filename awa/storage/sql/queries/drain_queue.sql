-- awa-pg's drain_queue: cancel every job of the queue that has not started
-- (scheduled, available, retryable), each through cancel_job so an available
-- job leaves a hole its lane's counters know about. Returns the count.
SELECT count(c.id)
FROM (
    SELECT id FROM __schema__.jobs
    WHERE queue = %(queue)s::text AND state IN ('scheduled', 'available', 'retryable')
    ORDER BY id
) AS f
CROSS JOIN LATERAL __schema__.cancel_job(f.id, %(now)s::timestamptz) AS c
