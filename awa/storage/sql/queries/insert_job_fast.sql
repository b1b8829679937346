-- Client.insert's common case in one statement, no PL/pgSQL (ADR 0035): a job
-- due now into a lane that exists, of a queue whose enqueue_shards the
-- client has right and that is not a registered logical queue. Writes what
-- insert_job writes in that case (the job row and its lane_pending row,
-- ADR 0028) and wakes claimers under the same test: the lane held no
-- numbered job past its claim cursor and no pending row. Always one row:
-- id is NULL when it wrote nothing (first use of the queue or lane, stale
-- shards, or a registered queue, which `registered` says), and the caller
-- calls insert_job, which handles every case. tests/test_insert_fast_path.py
-- holds the two to the same rows.
WITH r AS (
    SELECT EXISTS (
        SELECT 1 FROM __schema__.queue_partitions AS p
        WHERE p.logical_queue = __schema__.logical_queue(%(queue)s::text)) AS registered
), l AS (
    SELECT e.next_seq - 1 - coalesce((
               SELECT c.claim_seq + c.holes FROM __schema__.claim_heads AS c
               WHERE c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard), 0) <= 0
           AND NOT EXISTS (
               SELECT 1 FROM __schema__.lane_pending AS p
               WHERE p.queue = e.queue AND p.priority = e.priority AND p.enqueue_shard = e.enqueue_shard) AS empty
    FROM __schema__.queues AS q
    JOIN __schema__.enqueue_heads AS e
      ON e.queue = q.name AND e.priority = %(priority)s::smallint AND e.enqueue_shard = %(shard)s::smallint
    WHERE q.name = %(queue)s::text AND q.enqueue_shards = %(expected)s::smallint
      AND NOT (SELECT registered FROM r)
), job AS (
    INSERT INTO __schema__.jobs (
        queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
        kind, args, tags, metadata, ordering_key, concurrency_key)
    SELECT %(queue)s::text, %(priority)s::smallint, %(max_attempts)s::smallint, 'available', %(shard)s::smallint,
           NULL, coalesce(%(now)s::timestamptz, now()), coalesce(%(now)s::timestamptz, now()),
           %(kind)s::text, %(args)s::jsonb, %(tags)s::text[], %(metadata)s::jsonb, %(ordering_key)s::bytea,
           %(concurrency_key)s::bytea
    FROM l
    RETURNING id, queue, priority, enqueue_shard, state, created_at
), pending AS (
    INSERT INTO __schema__.lane_pending (queue, priority, enqueue_shard, pending_id, job_id)
    SELECT job.queue, job.priority, job.enqueue_shard, nextval('__schema__.lane_pending_ids'), job.id FROM job
)
SELECT job.id, job.queue, job.enqueue_shard, job.state, job.created_at, r.registered,
       CASE WHEN l.empty THEN pg_notify(%(channel)s::text, job.queue)::text IS NOT NULL ELSE false END AS notified
FROM r
LEFT JOIN (job CROSS JOIN l) ON true
