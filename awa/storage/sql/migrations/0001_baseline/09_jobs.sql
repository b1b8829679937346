-- Job-level admin: listing by state with a keyset cursor, and retry of a
-- failed or cancelled job by id.

-- Listing newest first (id DESC) for the states that are rare or bounded
-- next to completed and available: a keyset page of failed jobs is an index
-- range even with a million completed rows stored. (Completed and available
-- jobs are found from the primary key; running ones are few.)
CREATE INDEX jobs_listing
    ON __schema__.jobs (state, id)
    WHERE state IN ('scheduled', 'retryable', 'failed', 'cancelled');

-- Put a failed or cancelled job back: a fresh attempt count, due now (or at
-- p_run_at), the same run_lease (leases stay monotonic per job id), a new
-- number in its own lane. Returns the job, or no row when it is not failed
-- or cancelled (or does not exist).
CREATE OR REPLACE FUNCTION __schema__.retry_job(
    p_id      bigint,
    p_now     timestamptz,
    p_run_at  timestamptz,
    p_channel text
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now    timestamptz := coalesce(p_now, pg_catalog.now());
    v_run_at timestamptz := coalesce(p_run_at, coalesce(p_now, pg_catalog.now()));
BEGIN
    UPDATE __schema__.jobs
    SET state = 'scheduled', attempt = 0, run_at = v_run_at, lane_seq = NULL,
        finalized_at = NULL, heartbeat_at = NULL, deadline_at = NULL
    WHERE id = p_id AND state IN ('failed', 'cancelled');
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_run_at <= v_now THEN
        PERFORM __schema__.make_available(ARRAY[p_id], p_channel);
    END IF;
    RETURN QUERY SELECT * FROM __schema__.jobs WHERE id = p_id;
END
$$;
