-- Admin paths: cancel without a lease, retry from the dead-letter table.

-- Admin cancel without a lease: any non-terminal state. Cancelling an
-- available job takes its lane's claim head first, so a claimer never sees a
-- lane change under it.
CREATE OR REPLACE FUNCTION __schema__.cancel_job(p_id bigint, p_now timestamptz)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, pg_catalog.now());
    v_job __schema__.jobs;
BEGIN
    FOR attempt_no IN 1..10 LOOP
        SELECT * INTO v_job FROM __schema__.jobs WHERE id = p_id;
        IF NOT FOUND OR v_job.state IN ('completed', 'failed', 'cancelled') THEN
            RETURN;
        END IF;
        IF v_job.state = 'available' THEN
            INSERT INTO __schema__.claim_heads (queue, priority, enqueue_shard)
            VALUES (v_job.queue, v_job.priority, v_job.enqueue_shard)
            ON CONFLICT DO NOTHING;
            PERFORM 1 FROM __schema__.claim_heads
            WHERE queue = v_job.queue AND priority = v_job.priority
              AND enqueue_shard = v_job.enqueue_shard
            FOR UPDATE;
        END IF;
        RETURN QUERY
        UPDATE __schema__.jobs
        SET state = 'cancelled', finalized_at = v_now, heartbeat_at = NULL, deadline_at = NULL
        WHERE id = p_id AND state = v_job.state AND run_lease = v_job.run_lease
          AND lane_seq IS NOT DISTINCT FROM v_job.lane_seq
        RETURNING *;
        IF FOUND THEN
            IF v_job.state = 'available' AND v_job.lane_seq IS NOT NULL THEN
                -- Its number stays behind in the lane as a hole. A job not
                -- numbered yet leaves none: its pending row is dropped
                -- unnumbered when the lane is sequenced (ADR 0028).
                UPDATE __schema__.claim_heads
                SET holes = holes + 1
                WHERE queue = v_job.queue AND priority = v_job.priority
                  AND enqueue_shard = v_job.enqueue_shard;
                -- A parked job leaves its key's parked jobs (15_key_concurrency.sql).
                PERFORM __schema__.key_unpark_cancelled(v_job);
            END IF;
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'job % kept changing state while being cancelled', p_id;
END
$$;

-- Put a dead-lettered job back: a fresh attempt count, the same run_lease
-- (leases stay monotonic per job id), its own lane unless moved.
CREATE OR REPLACE FUNCTION __schema__.retry_from_dlq(
    p_id       bigint,
    p_now      timestamptz,
    p_run_at   timestamptz,
    p_priority smallint,
    p_queue    text,
    p_shard    smallint,
    p_channel  text
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, pg_catalog.now());
    v_queue text;
BEGIN
    WITH moved AS (
        DELETE FROM __schema__.dlq_entries WHERE id = p_id RETURNING *
    )
    INSERT INTO __schema__.jobs (
        id, run_lease, lane_seq, run_at, created_at, state, priority, max_attempts,
        attempt, enqueue_shard, kind, queue, ordering_key, args, errors, tags, metadata,
        concurrency_key, unique_key, unique_states)
    SELECT id, run_lease, NULL, coalesce(p_run_at, v_now), created_at, 'scheduled',
           coalesce(p_priority, priority), max_attempts, 0, coalesce(p_shard, enqueue_shard),
           kind, coalesce(p_queue, queue), ordering_key, args, errors, tags, metadata,
           concurrency_key, unique_key, unique_states  -- a newer holder of the key refuses it (UniqueConflict)
    FROM moved
    RETURNING queue INTO v_queue;
    IF v_queue IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO __schema__.queues (name) VALUES (v_queue) ON CONFLICT (name) DO NOTHING;
    IF coalesce(p_run_at, v_now) <= v_now THEN
        PERFORM __schema__.make_available(ARRAY[p_id], p_channel);
    END IF;
    RETURN QUERY SELECT * FROM __schema__.jobs WHERE id = p_id;
END
$$;
