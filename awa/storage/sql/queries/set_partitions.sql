INSERT INTO __schema__.queue_partitions AS p (logical_queue, partitions)
VALUES (%(queue)s::text, %(partitions)s::integer)
ON CONFLICT (logical_queue) DO UPDATE SET partitions = excluded.partitions, updated_at = now()
RETURNING (SELECT o.partitions FROM __schema__.queue_partitions AS o WHERE o.logical_queue = %(queue)s::text)
