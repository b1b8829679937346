-- The columns the database decides; Client.insert builds the rest of the Job
-- from what it sent (as the COPY path does), not from a decoded row.
-- registered: the queue is a partition of a registered logical queue, whose
-- jobs the database routes (the client then skips insert_job_fast, ADR 0035).
SELECT id, queue, enqueue_shard, state, created_at,
       EXISTS (SELECT 1 FROM __schema__.queue_partitions AS r
               WHERE r.logical_queue = __schema__.logical_queue(%(queue)s::text)) AS registered
FROM __schema__.insert_job(
    %(queue)s::text, %(expected)s::smallint, %(priority)s::smallint, %(shard)s::smallint,
    %(kind)s::text, %(args)s::jsonb, %(max_attempts)s::smallint, %(tags)s::text[], %(metadata)s::jsonb,
    %(ordering_key)s::bytea, %(run_at)s::timestamptz, %(now)s::timestamptz, %(channel)s::text,
    %(concurrency_key)s::bytea, %(mark_fast)s::boolean)
