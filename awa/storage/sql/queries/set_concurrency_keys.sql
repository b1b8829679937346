-- Concurrency keys of a batch just copied in (same transaction, so no claim
-- sees the rows without them): one UPDATE, rows in id order.
UPDATE __schema__.jobs AS j
SET concurrency_key = u.key
FROM (SELECT * FROM unnest(%(ids)s::bigint[], %(keys)s::bytea[]) AS u(id, key) ORDER BY u.id) AS u
WHERE j.id = u.id
