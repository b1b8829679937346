-- Retention: finished jobs are deleted after their queue's retention, in
-- bounded batches, by the maintenance leader; terminal counts are rolled up
-- so queue_stats does not count every stored row; autovacuum settings keep
-- the dead tuples of the busy tables bounded.
--
-- Terminal counts. queue_stats reports completed / failed / cancelled per
-- queue. Counting them row by row cost 340 ms at 1M stored rows, so each
-- (queue, terminal state) keeps a rolled-up count n of its rows finalized at
-- or before counted_upto; queue_stats adds the rows finalized later (an index
-- range, short while the roll-up runs). The roll-up only ever advances past
-- times no open transaction can still write (see rollup_terminal_counts), and
-- every path that takes a counted row away (delete, or an update of its state,
-- queue or finalized_at) corrects n: pruning in bulk, everything else through
-- the trigger below. Rows inserted already finalized at or before counted_upto
-- (by hand) are not counted.
CREATE TABLE __schema__.terminal_counts (
    queue        text                 NOT NULL,
    state        __schema__.job_state NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
    counted_upto timestamptz          NOT NULL DEFAULT '-infinity',
    n            bigint               NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, state)
);

-- A counted row left its (queue, state) or moved past counted_upto: take it
-- out of n; a row that becomes counted (updated into a terminal state with an
-- old finalized_at) is added. The UPDATE runs even when nothing changes, so
-- it always takes the count row's lock: a roll-up that counts concurrently
-- waits for this transaction and then sees its result.
CREATE OR REPLACE FUNCTION __schema__.terminal_counts_follow()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state IN ('completed', 'failed', 'cancelled') THEN
        UPDATE __schema__.terminal_counts AS c
        SET n = c.n - CASE WHEN OLD.finalized_at <= c.counted_upto THEN 1 ELSE 0 END
        WHERE c.queue = OLD.queue AND c.state = OLD.state;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.state IN ('completed', 'failed', 'cancelled') THEN
        UPDATE __schema__.terminal_counts AS c
        SET n = c.n + CASE WHEN NEW.finalized_at <= c.counted_upto THEN 1 ELSE 0 END
        WHERE c.queue = NEW.queue AND c.state = NEW.state;
    END IF;
    RETURN NULL;
END
$$;

-- Only terminal rows fire (the WHEN is checked without calling the function),
-- so claims, heartbeats and completions never run it; nor does pruning, which
-- sets awa.pruning for its transaction and corrects the counts in bulk.
CREATE TRIGGER jobs_terminal_delete
    AFTER DELETE ON __schema__.jobs
    FOR EACH ROW WHEN (OLD.state IN ('completed', 'failed', 'cancelled')
                       AND current_setting('awa.pruning', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION __schema__.terminal_counts_follow();

CREATE TRIGGER jobs_terminal_update
    AFTER UPDATE OF state, queue, finalized_at ON __schema__.jobs
    FOR EACH ROW WHEN (OLD.state IN ('completed', 'failed', 'cancelled')
                       AND (OLD.state, OLD.queue, OLD.finalized_at)
                           IS DISTINCT FROM (NEW.state, NEW.queue, NEW.finalized_at))
    EXECUTE FUNCTION __schema__.terminal_counts_follow();

-- Advance every queue's counts to a watermark that no open transaction can
-- still write below: the database clock minus p_lag, and no later than the
-- start of the oldest open client transaction (a job's finalized_at is its
-- transaction's clock, or the caller's p_now). Returns the rows newly counted.
-- Two steps: count rows are created (and committed by the caller's
-- autocommit) before anything is counted into them, so the trigger always
-- finds the row to lock.
CREATE OR REPLACE FUNCTION __schema__.rollup_terminal_counts(p_lag interval)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_mark  timestamptz;
    v_added bigint;
BEGIN
    INSERT INTO __schema__.terminal_counts (queue, state)
    SELECT q.name, s.state
    FROM __schema__.queues AS q
    CROSS JOIN (VALUES ('completed'::__schema__.job_state), ('failed'), ('cancelled')) AS s(state)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN 0;  -- counted from the next call on
    END IF;

    -- Lock the count rows first: a transaction that takes a counted row away
    -- holds its count row (the trigger), so counting starts after it commits.
    PERFORM 1 FROM __schema__.terminal_counts ORDER BY queue, state FOR UPDATE;
    SELECT least(pg_catalog.now() - p_lag, min(a.xact_start)) INTO v_mark
    FROM pg_catalog.pg_stat_activity AS a
    WHERE a.backend_type = 'client backend' AND a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid();

    -- A new statement: a snapshot taken after every writer below v_mark ended.
    WITH counted AS (
        SELECT c.queue, c.state,
               (SELECT count(*) FROM __schema__.jobs AS j
                WHERE j.queue = c.queue AND j.state = c.state
                  AND j.state IN ('completed', 'failed', 'cancelled')  -- lets the plan use jobs_terminal
                  AND j.finalized_at > c.counted_upto AND j.finalized_at <= v_mark) AS added
        FROM __schema__.terminal_counts AS c
        WHERE c.counted_upto < v_mark
    ), applied AS (
        UPDATE __schema__.terminal_counts AS c
        SET n = c.n + counted.added, counted_upto = v_mark
        FROM counted
        WHERE c.queue = counted.queue AND c.state = counted.state
        RETURNING counted.added
    )
    SELECT coalesce(sum(added), 0) INTO v_added FROM applied;
    RETURN v_added;
END
$$;

-- Delete finished jobs past their retention, at most p_limit rows in all.
-- Per queue: completed jobs after p_completed, failed and cancelled ones
-- after p_failed, unless the queue is named in p_queues (then its own
-- p_queue_completed / p_queue_failed apply; NULL keeps them). Walks the
-- jobs_terminal index (queue, state, finalized_at) one (queue, state) at a
-- time, oldest first, and skips rows another transaction holds. Returns the
-- deleted rows per (queue, state).
CREATE OR REPLACE FUNCTION __schema__.prune_terminal(
    p_now             timestamptz,
    p_completed       interval,
    p_failed          interval,
    p_queues          text[],
    p_queue_completed interval[],
    p_queue_failed    interval[],
    p_limit           integer
)
RETURNS TABLE (queue text, state text, deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, pg_catalog.now());
    v_left  integer := p_limit;
    v_group record;
    v_gone  bigint;
    v_seen  bigint;
BEGIN
    PERFORM set_config('awa.pruning', 'on', true);
    FOR v_group IN
        SELECT q.name, s.state,
               v_now - CASE WHEN s.state = 'completed'
                            THEN CASE WHEN o.name IS NULL THEN p_completed ELSE o.completed END
                            ELSE CASE WHEN o.name IS NULL THEN p_failed ELSE o.failed END END AS cutoff
        FROM __schema__.queues AS q
        CROSS JOIN (VALUES ('completed'::__schema__.job_state), ('failed'), ('cancelled')) AS s(state)
        LEFT JOIN unnest(p_queues, p_queue_completed, p_queue_failed) AS o(name, completed, failed)
               ON o.name = q.name
        ORDER BY q.name, s.state
    LOOP
        EXIT WHEN v_left <= 0;
        CONTINUE WHEN v_group.cutoff IS NULL;
        -- The count row first (same lock order as the roll-up).
        PERFORM 1 FROM __schema__.terminal_counts AS c
        WHERE c.queue = v_group.name AND c.state = v_group.state FOR UPDATE;
        WITH doomed AS (
            SELECT j.id FROM __schema__.jobs AS j
            WHERE j.queue = v_group.name AND j.state = v_group.state AND j.finalized_at < v_group.cutoff
              AND j.state IN ('completed', 'failed', 'cancelled')  -- a generic plan can use jobs_terminal
            ORDER BY j.finalized_at
            LIMIT v_left
            FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM __schema__.jobs AS j USING doomed
            WHERE j.id = doomed.id
            RETURNING j.finalized_at
        )
        SELECT count(*),
               count(*) FILTER (WHERE gone.finalized_at <= (
                   SELECT c.counted_upto FROM __schema__.terminal_counts AS c
                   WHERE c.queue = v_group.name AND c.state = v_group.state))
        INTO v_gone, v_seen
        FROM gone;
        IF v_gone > 0 THEN
            UPDATE __schema__.terminal_counts AS c SET n = c.n - v_seen
            WHERE c.queue = v_group.name AND c.state = v_group.state;
            v_left := v_left - v_gone::integer;
            queue := v_group.name;
            state := v_group.state::text;
            deleted := v_gone;
            RETURN NEXT;
        END IF;
    END LOOP;
    PERFORM set_config('awa.pruning', '', true);
END
$$;

-- Dead-letter entries keep their own retention (p_retention after dlq_at).
CREATE OR REPLACE FUNCTION __schema__.prune_dlq(p_now timestamptz, p_retention interval, p_limit integer)
RETURNS bigint
LANGUAGE sql AS $$
    WITH doomed AS (
        SELECT d.id FROM __schema__.dlq_entries AS d
        WHERE d.dlq_at < coalesce(p_now, pg_catalog.now()) - p_retention
        ORDER BY d.dlq_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM __schema__.dlq_entries AS d USING doomed WHERE d.id = doomed.id RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

-- Dead tuples. Every claim moves a lane's claim head and deletes its passed
-- segments; every batch bumps an enqueue head. These tables hold a few rows
-- per lane and turn over thousands of versions a second, so autovacuum runs
-- after a fixed number of dead rows instead of a fraction of a tiny table.
-- The jobs table is vacuumed after 2 % of its rows died (default 20 %), so
-- pruned space is reused by new jobs before the table grows much.
ALTER TABLE __schema__.claim_heads SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE __schema__.enqueue_heads SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE __schema__.lane_segments SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE __schema__.lane_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE __schema__.terminal_counts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
ALTER TABLE __schema__.jobs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02,
                                 autovacuum_analyze_scale_factor = 0.05);

-- Planner statistics. The lane tables are read one lane at a time, the lane
-- given as a parameter or a join column. When one lane holds most of a table
-- (a queue nobody claims from, with a backlog of single inserts), ANALYZE
-- sees a single queue, the planner takes any lane to match most rows, and a
-- lookup for another lane becomes a scan of the backlog (an EXISTS "finds
-- its first row at once"). Declaring the queue column highly distinct keeps
-- every per-lane lookup on the primary key, whatever ANALYZE saw; the
-- override applies from the next ANALYZE on.
ALTER TABLE __schema__.lane_pending ALTER COLUMN queue SET (n_distinct = -0.5);
ALTER TABLE __schema__.lane_segments ALTER COLUMN queue SET (n_distinct = -0.5);
