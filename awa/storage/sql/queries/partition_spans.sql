-- Per registered logical queue: its width, epoch and the partitions workers
-- must serve (the width, or more while a shrink still drains).
SELECT r.logical_queue, r.partitions, r.epoch,
       greatest(r.partitions, coalesce((SELECT max(greatest(e.old_width, e.new_width))
                                        FROM __schema__.partition_epochs AS e
                                        WHERE e.logical_queue = r.logical_queue AND e.finished_at IS NULL), 0)) AS span
FROM __schema__.queue_partitions AS r
ORDER BY r.logical_queue
