SELECT id, queue FROM __schema__.jobs WHERE id = ANY (%(ids)s::bigint[])
