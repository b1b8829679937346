SELECT outcome, epoch, old_width
FROM __schema__.repartition(%(queue)s::text, %(width)s::integer, %(timeout)s::integer, %(attempts)s::integer)
