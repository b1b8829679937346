SELECT logical_queue, partitions FROM __schema__.queue_partitions
WHERE %(queue)s::text IS NULL OR logical_queue = %(queue)s::text
ORDER BY logical_queue
