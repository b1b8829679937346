SELECT * FROM __schema__.cron_fire(%(name)s::text, %(fire_at)s::timestamptz, %(now)s::timestamptz, %(channel)s::text)
