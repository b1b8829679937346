SELECT * FROM __schema__.retry_job(%(id)s::bigint, %(now)s::timestamptz, %(run_at)s::timestamptz, %(channel)s::text)
