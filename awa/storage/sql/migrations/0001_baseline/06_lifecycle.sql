-- The end of an attempt: lease-guarded finish (retry, snooze, fail), rescue
-- of expired attempts, dead-lettering.

-- Move a (locked) failed job to the dead-letter table.
CREATE OR REPLACE FUNCTION __schema__.dead_letter(p_id bigint, p_reason text, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
BEGIN
    WITH moved AS (
        DELETE FROM __schema__.jobs WHERE id = p_id AND state = 'failed' RETURNING *
    )
    INSERT INTO __schema__.dlq_entries
    SELECT moved.*, p_reason, coalesce(p_now, pg_catalog.now()) FROM moved;
    RETURN FOUND;
END
$$;

-- Lease-guarded end of a running attempt. p_mode: 'fail', 'retry', 'snooze'.
-- Returns 'stale' (nothing changed), 'failed', 'dead_lettered', 'retryable',
-- 'scheduled' or 'available'.
CREATE OR REPLACE FUNCTION __schema__.finish_attempt(
    p_id            bigint,
    p_lease         bigint,
    p_now           timestamptz,
    p_mode          text,
    p_error         text,
    p_delay_seconds double precision,
    p_jitter        double precision,
    p_channel       text
)
RETURNS text
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now    timestamptz := coalesce(p_now, pg_catalog.now());
    v_job    __schema__.jobs;
    v_errors jsonb;
    v_delay  double precision;
    v_run_at timestamptz;
    v_dlq    boolean;
BEGIN
    SELECT * INTO v_job FROM __schema__.jobs
    WHERE id = p_id AND state = 'running' AND run_lease = p_lease
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'stale';
    END IF;

    v_errors := v_job.errors;
    IF p_error IS NOT NULL THEN
        v_errors := coalesce(v_errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'attempt', v_job.attempt, 'error', p_error, 'at', v_now));
    END IF;

    IF p_mode = 'snooze' THEN
        v_run_at := v_now + make_interval(secs => greatest(coalesce(p_delay_seconds, 0), 0));
        UPDATE __schema__.jobs
        SET state = 'scheduled', attempt = greatest(attempt - 1, 0), run_at = v_run_at,
            heartbeat_at = NULL, deadline_at = NULL, errors = v_errors
        WHERE id = p_id;
    ELSIF p_mode = 'retry' AND v_job.attempt < v_job.max_attempts THEN
        v_delay := coalesce(p_delay_seconds,
                            least(power(2, v_job.attempt) + coalesce(p_jitter, 0), 86400));
        v_run_at := v_now + make_interval(secs => greatest(v_delay, 0));
        UPDATE __schema__.jobs
        SET state = 'retryable', run_at = v_run_at,
            heartbeat_at = NULL, deadline_at = NULL, errors = v_errors
        WHERE id = p_id;
    ELSE
        UPDATE __schema__.jobs
        SET state = 'failed', finalized_at = v_now,
            heartbeat_at = NULL, deadline_at = NULL, errors = v_errors
        WHERE id = p_id;
        SELECT dlq_enabled INTO v_dlq FROM __schema__.queues WHERE name = v_job.queue;
        IF coalesce(v_dlq, false) THEN
            PERFORM __schema__.dead_letter(
                p_id,
                CASE WHEN p_mode = 'fail' THEN 'terminal_error' ELSE 'max_attempts_exhausted' END,
                v_now);
            RETURN 'dead_lettered';
        END IF;
        RETURN 'failed';
    END IF;

    IF v_run_at <= v_now THEN
        PERFORM __schema__.make_available(ARRAY[p_id], p_channel);
        RETURN 'available';
    END IF;
    RETURN CASE WHEN p_mode = 'snooze' THEN 'scheduled' ELSE 'retryable' END;
END
$$;

-- Running attempts whose heartbeat went quiet or whose deadline passed go
-- back to retryable (or fail when out of attempts). SKIP LOCKED: each row is
-- rescued once, by whichever process gets to it.
CREATE OR REPLACE FUNCTION __schema__.rescue_expired(
    p_now               timestamptz,
    p_heartbeat_timeout interval,
    p_limit             integer,
    p_jitter            double precision,
    p_channel           text
)
RETURNS TABLE (job_id bigint, run_lease bigint, outcome text)
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, pg_catalog.now());
    v_row record;
BEGIN
    FOR v_row IN
        SELECT j.id, j.run_lease,
               CASE WHEN j.deadline_at IS NOT NULL AND j.deadline_at <= v_now
                    THEN 'deadline exceeded' ELSE 'heartbeat expired' END AS reason
        FROM __schema__.jobs AS j
        WHERE j.state = 'running'
          AND (j.heartbeat_at < v_now - p_heartbeat_timeout
               OR (j.deadline_at IS NOT NULL AND j.deadline_at <= v_now))
        ORDER BY j.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        job_id := v_row.id;
        run_lease := v_row.run_lease;
        outcome := __schema__.finish_attempt(
            v_row.id, v_row.run_lease, v_now, 'retry', v_row.reason, NULL, p_jitter, p_channel);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The schema's wake-up channel (queries.notify_channel): its name, quoted in
-- this migration, without the quotes (schema names have no inner quotes). A
-- plain SQL expression: a constant in the statements that call it.
CREATE OR REPLACE FUNCTION __schema__.jobs_channel()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim('__schema__', '"') || '_jobs'
$$;

-- Batch completion (p_complete) or heartbeat: lease-guarded, rows locked in
-- id order (two batches never deadlock), the pairs that applied returned.
-- Every statement that completes jobs is this one (complete.sql too): it
-- does for governed attempts what the release trigger does for their other
-- ends (15_key_concurrency.sql, ADR 0036). A
-- function rather than client statements for the plan (ADR 0029): the
-- planner sees a parameter array's length, so a custom plan of `unnest`
-- always looks cheaper than the generic one and the prepared statement was
-- planned again on every call. A forced generic plan stays cached; every
-- lookup here is by primary key whatever the batch size.
CREATE OR REPLACE FUNCTION __schema__.lease_batch(
    p_complete boolean,
    p_ids      bigint[],
    p_leases   bigint[],
    p_now      timestamptz
)
RETURNS TABLE (id bigint, run_lease bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off  -- ADR 0039
AS $$
BEGIN
    IF p_complete THEN
        -- A governed attempt's end wakes its queue (15_key_concurrency.sql):
        -- a notification per completed governed row, which PostgreSQL sends
        -- once per queue and transaction. The row also raises a
        -- transaction-local flag, so that only a statement that completed a
        -- governed job pays for the look at pending limits below (an unkeyed
        -- single completion would pay ~10 us for it). pg_notify's void is '',
        -- never NULL: the CASE returns run_lease either way.
        RETURN QUERY
        UPDATE __schema__.jobs AS j
        SET state = 'completed', finalized_at = coalesce(p_now, now()), heartbeat_at = NULL, deadline_at = NULL
        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u
        WHERE j.id = u.id AND j.state = 'running' AND j.run_lease = u.lease
        RETURNING j.id,
                  CASE WHEN j.granted_key IS NOT NULL
                            AND (pg_notify(__schema__.jobs_channel(), j.queue)::text
                                 || set_config('awa.keys_released', 'on', true)) IS NULL
                       THEN NULL ELSE j.run_lease END;
        -- Then settle a pending lower limit: a later statement, whose
        -- snapshot sees these rows completed.
        IF current_setting('awa.keys_released', true) = 'on' THEN
            PERFORM set_config('awa.keys_released', '', true);
            PERFORM __schema__.key_settle_pending();
        END IF;
    ELSE
        RETURN QUERY
        UPDATE __schema__.jobs AS j
        SET heartbeat_at = coalesce(p_now, now())
        FROM (SELECT u.id, u.lease FROM unnest(p_ids, p_leases) AS u(id, lease) ORDER BY u.id) AS u
        WHERE j.id = u.id AND j.state = 'running' AND j.run_lease = u.lease
        RETURNING j.id, j.run_lease;
    END IF;
END
$$;
