-- awa-pg's discard_failed: delete the failed jobs of one kind (the
-- terminal-count trigger keeps queue_stats right).
DELETE FROM __schema__.jobs WHERE kind = %(kind)s::text AND state = 'failed'
