SELECT * FROM __schema__.claim_jobs(%(queues)s::text[], %(limit)s::integer, %(now)s::timestamptz, %(deadline)s::interval,
                                    %(aging)s::interval)
