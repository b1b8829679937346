-- One round trip that claims for several queues, each with its own limit: the
-- same claim_jobs as claim.sql, called once per queue in the given order, so
-- every queue keeps its cap, lane order and lease rules exactly as if claimed alone.
SELECT j.*
FROM unnest(%(queues)s::text[], %(limits)s::integer[]) WITH ORDINALITY AS q(name, lim, ord)
CROSS JOIN LATERAL __schema__.claim_jobs(ARRAY[q.name], q.lim, %(now)s::timestamptz, %(deadline)s::interval,
                                         %(aging)s::interval) AS j
ORDER BY q.ord
