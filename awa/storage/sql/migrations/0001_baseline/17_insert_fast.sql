-- Client.insert's common case in one statement, no PL/pgSQL (ADR 0035): a job
-- due now into a lane that exists, of a queue whose enqueue_shards the
-- client has right and that is known to be outside every registered logical
-- queue (queues.fast_inserts, below). Writes what
-- insert_job writes in that case (the job row and its lane_pending row,
-- ADR 0028) and wakes claimers under the same test: the lane held no
-- numbered job past its claim cursor and no pending row. One row: id is
-- NULL when it wrote nothing (first use of the queue or lane, stale shards,
-- or a queue not known to be unregistered), and the caller calls
-- insert_job, which handles every case. tests/test_insert_fast_path.py
-- holds the two to the same rows.
--
-- Written for few plan nodes: the executor builds the plan's state on every
-- call, which was a quarter of the statement's server time. The
-- lane's lookups are one join, the wake-up is sent from that join's one row
-- (a row there is a job written: the insert reads it), and the columns the
-- caller sent are not returned.
--
-- A SQL function rather than the client's own statement only to carry the
-- planner settings of the hot paths: a plan made while lane_pending was
-- analysed empty would otherwise scan all of it on every insert as a backlog
-- grows (ADR 0039).
CREATE OR REPLACE FUNCTION __schema__.insert_job_fast(
    p_queue text,
    p_priority smallint,
    p_shard smallint,
    p_expected smallint,
    p_max_attempts smallint,
    p_now timestamptz,
    p_kind text,
    p_args jsonb,
    p_tags text[],
    p_metadata jsonb,
    p_ordering_key bytea,
    p_concurrency_key bytea,
    p_channel text,
    OUT id bigint, OUT created_at timestamptz, OUT notified boolean)
LANGUAGE sql
SET plan_cache_mode = force_generic_plan  -- ADR 0029
SET enable_seqscan = off                  -- ADR 0039
AS $$
WITH l AS MATERIALIZED (
    SELECT CASE WHEN e.next_seq - 1 <= coalesce(c.claim_seq + c.holes, 0)
                     AND NOT EXISTS (
                         SELECT 1 FROM __schema__.lane_pending AS p
                         WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard)
                THEN pg_notify(p_channel, p_queue)::text IS NOT NULL
                ELSE false END AS notified
    FROM __schema__.enqueue_heads AS e
    JOIN __schema__.queues AS q ON q.name = p_queue AND q.enqueue_shards = p_expected
    LEFT JOIN __schema__.claim_heads AS c
      ON c.queue = p_queue AND c.priority = p_priority AND c.enqueue_shard = p_shard
    WHERE e.queue = p_queue AND e.priority = p_priority AND e.enqueue_shard = p_shard
      AND q.fast_inserts
), job AS (
    INSERT INTO __schema__.jobs (
        queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
        kind, args, tags, metadata, ordering_key, concurrency_key)
    SELECT p_queue, p_priority, p_max_attempts, 'available', p_shard,
           NULL, coalesce(p_now, now()), coalesce(p_now, now()),
           p_kind, p_args, p_tags, p_metadata, p_ordering_key, p_concurrency_key
    FROM l
    RETURNING id, created_at
), pending AS (
    INSERT INTO __schema__.lane_pending (queue, priority, enqueue_shard, pending_id, job_id)
    SELECT p_queue, p_priority, p_shard, nextval('__schema__.lane_pending_ids'), job.id FROM job
)
SELECT job.id, job.created_at, l.notified FROM job, l
$$;

-- queues.fast_inserts caches "no registered logical queue has this queue"
-- for the statement above, which would otherwise probe queue_partitions on
-- every call (ADR 0040). It must never be true for a partition of a
-- registered logical queue in any committed state: such a queue's jobs are
-- routed by the database and take its key shared (16_repartition.sql).
--
-- Set by insert_job once a job went in unrouted, when the client asks for it
-- (a call that is a transaction of its own, so that the queue row's lock
-- ends with the insert, not with a caller's transaction): only under READ
-- COMMITTED (a fresh snapshot per statement), only while holding the logical queue's
-- key shared, taken without waiting, and only with the registry read after
-- the key. A registration takes the key exclusively before it clears the
-- flag, so it waits for a setter still holding the key and then sees its
-- row; a setter that takes the key after the registration committed sees the
-- registration and sets nothing. Nothing here waits: a key or row held by
-- someone else leaves the flag as it is, and the next slow insert tries again.
CREATE OR REPLACE FUNCTION __schema__.mark_fast_inserts(p_queue text)
RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_logical text := __schema__.logical_queue(p_queue);
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT __schema__.partition_key_try_shared(v_logical) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM __schema__.queue_partitions AS r WHERE r.logical_queue = v_logical) THEN
        RETURN;
    END IF;
    UPDATE __schema__.queues AS q SET fast_inserts = true
    WHERE q.name = (SELECT l.name FROM __schema__.queues AS l
                    WHERE l.name = p_queue AND NOT l.fast_inserts
                    FOR NO KEY UPDATE SKIP LOCKED);
END
$$;

-- A logical queue registered: none of its physical queues takes the fast
-- statement any more (under its key, exclusively: see above).
CREATE OR REPLACE FUNCTION __schema__.registry_clears_fast_inserts()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM __schema__.partition_key_lock(NEW.logical_queue, true);
    UPDATE __schema__.queues AS q SET fast_inserts = false
    WHERE q.fast_inserts AND __schema__.logical_queue(q.name) = NEW.logical_queue;
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_partitions_clear_fast_inserts
    AFTER INSERT ON __schema__.queue_partitions
    FOR EACH ROW EXECUTE FUNCTION __schema__.registry_clears_fast_inserts();
