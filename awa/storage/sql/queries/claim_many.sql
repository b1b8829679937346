-- One round trip that claims for several queues, each with its own cap
-- (names distinct): one walk over the lanes of all of them (claim_jobs_limited),
-- every queue claimed exactly as if it were claimed alone with its cap.
SELECT *
FROM __schema__.claim_jobs_limited(%(queues)s::text[], %(limits)s::integer[], %(total)s::integer,
                                   %(now)s::timestamptz, %(deadline)s::interval, %(aging)s::interval)
