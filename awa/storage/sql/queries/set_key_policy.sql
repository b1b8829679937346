-- Create or change a key policy (15_key_concurrency.sql); no row: unknown
-- policy and create was false.
SELECT name, max_in_flight, pending_max, from_ordering_key, look_ahead
FROM __schema__.set_key_policy(%(name)s::text, %(max_in_flight)s::integer, %(from_ordering_key)s::boolean,
                               %(look_ahead)s::integer, %(create)s::boolean)
