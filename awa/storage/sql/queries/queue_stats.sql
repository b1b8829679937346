-- Each count reads only the partial index of its state group, so the cost
-- follows the size of that group, not of the whole table.
WITH wanted AS (
    SELECT name, paused, enqueue_shards, dlq_enabled FROM __schema__.queues
    WHERE %(queue)s::text IS NULL OR name = %(queue)s::text
), deferred AS (
    SELECT queue, count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
           count(*) FILTER (WHERE state = 'retryable') AS retryable
    FROM __schema__.jobs WHERE state IN ('scheduled', 'retryable') GROUP BY queue
), running AS (
    SELECT queue, count(*) AS running FROM __schema__.jobs WHERE state = 'running' GROUP BY queue
), terminal_parts AS (
    -- Terminal rows: the rolled-up count (08_retention.sql) plus the rows
    -- finalized after it (an index range of jobs_terminal; the literal state
    -- list lets the planner use that partial index).
    SELECT w.name AS queue, s.state,
           coalesce(c.n, 0)
           + (SELECT count(*) FROM __schema__.jobs AS j
              WHERE j.queue = w.name AND j.state = s.state AND j.state IN ('completed', 'failed', 'cancelled')
                AND j.finalized_at > coalesce(c.counted_upto, '-infinity'))
           + (SELECT count(*) FROM __schema__.jobs AS j
              WHERE j.queue = w.name AND j.state = s.state AND j.state IN ('completed', 'failed', 'cancelled')
                AND j.finalized_at IS NULL) AS n
    FROM wanted AS w
    CROSS JOIN (VALUES ('completed'::__schema__.job_state), ('failed'), ('cancelled')) AS s(state)
    LEFT JOIN __schema__.terminal_counts AS c ON c.queue = w.name AND c.state = s.state
), terminal AS (
    SELECT queue, sum(n) FILTER (WHERE state = 'completed') AS completed,
           sum(n) FILTER (WHERE state = 'failed') AS failed,
           sum(n) FILTER (WHERE state = 'cancelled') AS cancelled
    FROM terminal_parts GROUP BY queue
), dlq AS (
    SELECT queue, count(*) AS dead FROM __schema__.dlq_entries GROUP BY queue
)
SELECT w.name, w.paused, w.enqueue_shards, w.dlq_enabled,
       coalesce(d.scheduled, 0), coalesce(d.retryable, 0), coalesce(r.running, 0),
       coalesce(t.completed, 0)::bigint, coalesce(t.failed, 0)::bigint, coalesce(t.cancelled, 0)::bigint, coalesce(x.dead, 0)
FROM wanted AS w
LEFT JOIN deferred AS d ON d.queue = w.name
LEFT JOIN running AS r ON r.queue = w.name
LEFT JOIN terminal AS t ON t.queue = w.name
LEFT JOIN dlq AS x ON x.queue = w.name
ORDER BY w.name
