SELECT * FROM __schema__.cancel_job(%(id)s::bigint, %(now)s::timestamptz)
