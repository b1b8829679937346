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
), terminal AS (
    SELECT queue, count(*) FILTER (WHERE state = 'completed') AS completed,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state = 'cancelled') AS cancelled
    FROM __schema__.jobs WHERE state IN ('completed', 'failed', 'cancelled') GROUP BY queue
), dlq AS (
    SELECT queue, count(*) AS dead FROM __schema__.dlq_entries GROUP BY queue
)
SELECT w.name, w.paused, w.enqueue_shards, w.dlq_enabled,
       coalesce(d.scheduled, 0), coalesce(d.retryable, 0), coalesce(r.running, 0),
       coalesce(t.completed, 0), coalesce(t.failed, 0), coalesce(t.cancelled, 0), coalesce(x.dead, 0)
FROM wanted AS w
LEFT JOIN deferred AS d ON d.queue = w.name
LEFT JOIN running AS r ON r.queue = w.name
LEFT JOIN terminal AS t ON t.queue = w.name
LEFT JOIN dlq AS x ON x.queue = w.name
ORDER BY w.name
