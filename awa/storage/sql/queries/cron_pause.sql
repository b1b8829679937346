UPDATE __schema__.cron_jobs
SET paused_at = CASE WHEN %(paused)s::boolean THEN coalesce(paused_at, coalesce(%(now)s::timestamptz, now())) END,
    paused_by = CASE WHEN %(paused)s::boolean THEN coalesce(paused_by, %(by)s::text) END,
    updated_at = coalesce(%(now)s::timestamptz, now())
WHERE name = %(name)s::text
RETURNING name
