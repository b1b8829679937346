SELECT name, cron_expr, timezone, kind, queue, args, priority, max_attempts, tags, metadata,
       missed_fire_policy, last_enqueued_at, created_at, updated_at, paused_at, paused_by
FROM __schema__.cron_jobs
ORDER BY name
