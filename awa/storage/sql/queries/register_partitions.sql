-- The first caller records its width; every caller gets the recorded one back.
-- DO UPDATE (a no-op write), not DO NOTHING: when another worker inserts the
-- row concurrently, DO NOTHING leaves a row this statement's snapshot cannot
-- see, and a second SELECT of it returns nothing. DO UPDATE waits for that
-- insert and returns the committed row.
INSERT INTO __schema__.queue_partitions AS p (logical_queue, partitions)
VALUES (%(queue)s::text, %(partitions)s::integer)
ON CONFLICT (logical_queue) DO UPDATE SET partitions = p.partitions
RETURNING p.partitions, (p.xmax = 0) AS created
