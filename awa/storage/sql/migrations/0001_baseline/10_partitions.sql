-- The partition registry: how many physical queues a logical queue has.
--
-- Producers route keys with a width and workers serve a width; when the two
-- disagree, keyed jobs land in partitions nobody serves, or the same key lands
-- in two partitions. The width is recorded here by `awa queue partitions NAME
-- N` or by the first producer or worker that uses the logical queue
-- (register_partitions), and later ones compare their width with it.
CREATE TABLE __schema__.queue_partitions (
    logical_queue text        PRIMARY KEY CHECK (length(logical_queue) BETWEEN 1 AND 200),
    partitions    integer     NOT NULL CHECK (partitions BETWEEN 1 AND 32767),
    -- bumped by each online width change (16_repartition.sql, ADR 0024)
    epoch         integer     NOT NULL DEFAULT 1 CHECK (epoch >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
