-- Key policies with their open grants: how many keys hold any, and the most
-- one key holds.
SELECT p.name, p.max_in_flight, p.pending_max, p.from_ordering_key, p.look_ahead,
       coalesce(g.keys, 0) AS keys_in_flight, coalesce(g.most, 0) AS most_in_flight,
       coalesce(g.grants, 0) AS in_flight
FROM __schema__.key_policies AS p
LEFT JOIN LATERAL (
    SELECT count(*) AS keys, max(n) AS most, sum(n)::bigint AS grants
    FROM (SELECT count(*) AS n FROM __schema__.key_grants() AS k WHERE k.policy = p.name GROUP BY k.key) AS c
) AS g ON true
WHERE %(name)s::text IS NULL OR p.name = %(name)s::text
ORDER BY p.name
