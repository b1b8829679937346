SELECT db_now, scheduled, shards_ok, shards, lane_starts, id_starts, id_lengths, widths_ok, widths,
       pg_current_xact_id()::text AS xact_id
FROM __schema__.enqueue_reserve(
    %(queues)s::text[], %(expected)s::smallint[],
    %(lane_queue)s::text[], %(lane_priority)s::smallint[], %(lane_shard)s::smallint[], %(lane_count)s::integer[],
    %(run_at)s::timestamptz, %(now)s::timestamptz, %(id_count)s::integer, %(channel)s::text,
    %(widths)s::integer[])
