-- Unique jobs: at most one job per unique key among the jobs whose state is
-- in their own unique_states mask (awa's bit(8): bit 0, the leftmost, is
-- 'scheduled', then available, running, completed, retryable, failed,
-- cancelled, waiting_external).
--
-- A partial unique index, not a claims table: PostgreSQL checks it on every
-- row a COPY, an INSERT or an UPDATE writes, waiting for a concurrent
-- producer's uncommitted row with the same key, so two producers, one batch
-- holding a key twice, or two partitions of one logical queue (rows of one
-- table) can never leave two live jobs with one key. A job that leaves its
-- unique states (completed, failed, cancelled when not in the mask), or is
-- deleted by retention or moved to the dead-letter queue, drops out of the
-- index and frees its key in the same transaction.

CREATE OR REPLACE FUNCTION __schema__.unique_state_held(p_mask bit(8), p_state __schema__.job_state)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT get_bit(p_mask, CASE p_state
        WHEN 'scheduled' THEN 0 WHEN 'available' THEN 1 WHEN 'running' THEN 2
        WHEN 'completed' THEN 3 WHEN 'retryable' THEN 4 WHEN 'failed' THEN 5
        WHEN 'cancelled' THEN 6 END) = 1
$$;

-- The name is awa's, so a UniqueConflict names the same constraint.
CREATE UNIQUE INDEX idx_awa_jobs_unique
    ON __schema__.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND __schema__.unique_state_held(unique_states, state);

-- Give just-written jobs of the caller's transaction their keys (after the
-- batch's COPY): a key already held, or held twice in the batch, raises
-- unique_violation on idx_awa_jobs_unique and the whole batch rolls back.
CREATE OR REPLACE FUNCTION __schema__.set_unique_keys(p_ids bigint[], p_keys bytea[], p_states bit(8)[])
RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE __schema__.jobs AS j
    SET unique_key = u.k, unique_states = u.s
    FROM unnest(p_ids, p_keys, p_states) AS u(id, k, s)
    WHERE j.id = u.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- The oldest job holding a key (awa's cancel_by_unique_key looks it up, then
-- cancels it like an admin cancel by id).
CREATE OR REPLACE FUNCTION __schema__.unique_key_holder(p_key bytea)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT id FROM __schema__.jobs
    WHERE unique_key = p_key AND __schema__.unique_state_held(unique_states, state)
      AND state NOT IN ('completed', 'failed', 'cancelled')
    ORDER BY id
    LIMIT 1
$$;
