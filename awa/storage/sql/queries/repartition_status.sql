SELECT r.logical_queue, r.partitions AS width, r.epoch AS registry_epoch,
       e.epoch, e.old_width, e.new_width, e.started_at, e.finished_at,
       (SELECT count(*) FROM __schema__.lane_fences AS f
        WHERE f.logical_queue = e.logical_queue AND f.epoch = e.epoch AND f.lifted_at IS NULL) AS fences_up,
       (SELECT count(*) FROM __schema__.lane_fences AS f
        WHERE f.logical_queue = e.logical_queue AND f.epoch = e.epoch) AS fences
FROM __schema__.queue_partitions AS r
LEFT JOIN __schema__.partition_epochs AS e ON e.logical_queue = r.logical_queue
WHERE r.logical_queue = %(queue)s::text
ORDER BY e.epoch
