SELECT __schema__.finish_attempt(
    %(id)s::bigint, %(lease)s::bigint, %(now)s::timestamptz, %(mode)s::text, %(error)s::text,
    %(delay)s::double precision, %(jitter)s::double precision, %(channel)s::text)
