SELECT name, enqueue_shards FROM __schema__.queues WHERE name = ANY (%(queues)s::text[])
