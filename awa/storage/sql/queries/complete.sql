-- lease_batch: every statement that completes jobs is that one (it wakes the
-- queues of governed attempts, 15_key_concurrency.sql)
SELECT id FROM __schema__.lease_batch(true, ARRAY[%(id)s::bigint], ARRAY[%(lease)s::bigint], %(now)s::timestamptz)
