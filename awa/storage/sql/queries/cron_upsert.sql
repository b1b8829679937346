SELECT __schema__.cron_upsert(
    %(name)s::text, %(cron_expr)s::text, %(timezone)s::text, %(kind)s::text, %(queue)s::text, %(args)s::jsonb,
    %(priority)s::smallint, %(max_attempts)s::smallint, %(tags)s::text[], %(metadata)s::jsonb,
    %(policy)s::text, %(now)s::timestamptz)
