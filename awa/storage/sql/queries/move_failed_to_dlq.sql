SELECT __schema__.dead_letter(%(id)s::bigint, %(reason)s::text, %(now)s::timestamptz)
