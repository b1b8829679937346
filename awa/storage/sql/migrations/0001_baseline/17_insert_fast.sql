-- Client.insert's common case in one statement, no PL/pgSQL (ADR 0035): a job
-- due now into a lane that exists, of a queue whose enqueue_shards the
-- client has right and that is not a registered logical queue. Writes what
-- insert_job writes in that case (the job row and its lane_pending row,
-- ADR 0028) and wakes claimers under the same test: the lane held no
-- numbered job past its claim cursor and no pending row. Always one row:
-- id is NULL when it wrote nothing (first use of the queue or lane, stale
-- shards, or a registered queue, which `registered` says), and the caller
-- calls insert_job, which handles every case. tests/test_insert_fast_path.py
-- holds the two to the same rows.
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
    OUT id bigint, OUT queue text, OUT enqueue_shard smallint, OUT state __schema__.job_state,
    OUT created_at timestamptz, OUT registered boolean, OUT notified boolean)
LANGUAGE sql
SET plan_cache_mode = force_generic_plan  -- ADR 0029
SET enable_seqscan = off                  -- ADR 0039
AS $$
WITH r AS (
    SELECT EXISTS (
        SELECT 1 FROM __schema__.queue_partitions AS p
        WHERE p.logical_queue = __schema__.logical_queue(p_queue)) AS registered
), l AS (
    SELECT e.next_seq - 1 - coalesce((
               SELECT c.claim_seq + c.holes FROM __schema__.claim_heads AS c
               WHERE c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard), 0) <= 0
           AND NOT EXISTS (
               SELECT 1 FROM __schema__.lane_pending AS p
               WHERE p.queue = e.queue AND p.priority = e.priority AND p.enqueue_shard = e.enqueue_shard) AS empty
    FROM __schema__.queues AS q
    JOIN __schema__.enqueue_heads AS e
      ON e.queue = q.name AND e.priority = p_priority AND e.enqueue_shard = p_shard
    WHERE q.name = p_queue AND q.enqueue_shards = p_expected
      AND NOT (SELECT registered FROM r)
), job AS (
    INSERT INTO __schema__.jobs (
        queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
        kind, args, tags, metadata, ordering_key, concurrency_key)
    SELECT p_queue, p_priority, p_max_attempts, 'available', p_shard,
           NULL, coalesce(p_now, now()), coalesce(p_now, now()),
           p_kind, p_args, p_tags, p_metadata, p_ordering_key,
           p_concurrency_key
    FROM l
    RETURNING id, queue, priority, enqueue_shard, state, created_at
), pending AS (
    INSERT INTO __schema__.lane_pending (queue, priority, enqueue_shard, pending_id, job_id)
    SELECT job.queue, job.priority, job.enqueue_shard, nextval('__schema__.lane_pending_ids'), job.id FROM job
)
SELECT job.id, job.queue, job.enqueue_shard, job.state, job.created_at, r.registered,
       CASE WHEN l.empty THEN pg_notify(p_channel, job.queue)::text IS NOT NULL ELSE false END AS notified
FROM r
LEFT JOIN (job CROSS JOIN l) ON true
$$;
