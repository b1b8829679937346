SELECT * FROM __schema__.insert_job(
    %(queue)s::text, %(expected)s::smallint, %(priority)s::smallint, %(shard)s::smallint,
    %(kind)s::text, %(args)s::jsonb, %(max_attempts)s::smallint, %(tags)s::text[], %(metadata)s::jsonb,
    %(ordering_key)s::bytea, %(run_at)s::timestamptz, %(now)s::timestamptz, %(channel)s::text,
    %(concurrency_key)s::bytea)
