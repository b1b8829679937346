DELETE FROM __schema__.cron_jobs WHERE name = %(name)s::text RETURNING name
