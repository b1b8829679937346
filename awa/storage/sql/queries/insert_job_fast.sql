-- Client.insert's common case (ADR 0035); the function is in 17_insert_fast.sql.
SELECT * FROM __schema__.insert_job_fast(
    %(queue)s::text, %(priority)s::smallint, %(shard)s::smallint, %(expected)s::smallint,
    %(max_attempts)s::smallint, %(now)s::timestamptz, %(kind)s::text, %(args)s::jsonb, %(tags)s::text[],
    %(metadata)s::jsonb, %(ordering_key)s::bytea, %(concurrency_key)s::bytea, %(channel)s::text)
