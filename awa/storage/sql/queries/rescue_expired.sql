SELECT job_id, run_lease, outcome
FROM __schema__.rescue_expired(%(now)s::timestamptz, %(timeout)s::interval, %(limit)s::integer,
                               %(jitter)s::double precision, %(channel)s::text)
