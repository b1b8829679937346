SELECT * FROM __schema__.retry_from_dlq(
    %(id)s::bigint, %(now)s::timestamptz, %(run_at)s::timestamptz, %(priority)s::smallint,
    %(queue)s::text, %(shard)s::smallint, %(channel)s::text)
