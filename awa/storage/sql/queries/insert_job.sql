-- The columns the database decides; Client.insert builds the rest of the Job
-- from what it sent (as the COPY path does), not from a decoded row.
SELECT id, queue, enqueue_shard, state, created_at FROM __schema__.insert_job(
    %(queue)s::text, %(expected)s::smallint, %(priority)s::smallint, %(shard)s::smallint,
    %(kind)s::text, %(args)s::jsonb, %(max_attempts)s::smallint, %(tags)s::text[], %(metadata)s::jsonb,
    %(ordering_key)s::bytea, %(run_at)s::timestamptz, %(now)s::timestamptz, %(channel)s::text,
    %(concurrency_key)s::bytea)
