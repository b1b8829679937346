-- The first caller records its width; every caller gets the recorded one back.
WITH added AS (
    INSERT INTO __schema__.queue_partitions (logical_queue, partitions)
    VALUES (%(queue)s::text, %(partitions)s::integer)
    ON CONFLICT (logical_queue) DO NOTHING
    RETURNING partitions, true AS created
)
SELECT partitions, created FROM added
UNION ALL
SELECT partitions, false FROM __schema__.queue_partitions
WHERE logical_queue = %(queue)s::text AND NOT EXISTS (SELECT 1 FROM added)
