-- Jobs completed in the hour before now, per queue (an index range of
-- jobs_terminal per queue).
SELECT q.name,
       (SELECT count(*) FROM __schema__.jobs AS j
        WHERE j.queue = q.name AND j.state = 'completed'
          AND j.finalized_at > coalesce(%(now)s::timestamptz, now()) - interval '1 hour') AS n
FROM __schema__.queues AS q
WHERE %(queue)s::text IS NULL OR q.name = %(queue)s::text
