-- Whether a queue exists: it has a row in queues (every enqueue adds one), or it
-- is partition k of a logical queue whose registered width is above k.
SELECT EXISTS (SELECT 1 FROM __schema__.queues WHERE name = %(queue)s::text)
    OR EXISTS (SELECT 1 FROM __schema__.queue_partitions
               WHERE logical_queue = %(base)s::text AND partitions > %(index)s::integer)
