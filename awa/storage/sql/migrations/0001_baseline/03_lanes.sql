-- Lane heads: the one place that takes numbers from a lane's enqueue head,
-- and the one lookup of a lane's next job.
--
-- Every function takes p_now (NULL = the database clock) so tests can drive
-- time explicitly. Lock order everywhere: claim head -> enqueue head -> job
-- rows of the lane not yet numbered (sequencing), claim head -> job rows,
-- and scheduled or retryable job rows -> enqueue heads (heads always in
-- (queue, priority, enqueue_shard) order). Claimers take both heads with
-- SKIP LOCKED. That keeps producers, claimers, promotion and admin paths
-- deadlock-free.

-- Record lane numbers: jobs p_id[i] got number p_seq[i] in lane i. One
-- segment per maximal run where both the number and the id go up by one.
-- Used by sequence_lanes and make_available.
CREATE OR REPLACE FUNCTION __schema__.insert_lane_segments(
    p_queue    text[],
    p_priority smallint[],
    p_shard    smallint[],
    p_seq      bigint[],
    p_id       bigint[]
)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO __schema__.lane_segments (queue, priority, enqueue_shard, first_seq, last_seq, first_id)
    SELECT queue, priority, enqueue_shard, min(seq), max(seq), min(id)
    FROM (
        SELECT x.*, x.seq - row_number() OVER (PARTITION BY x.queue, x.priority, x.enqueue_shard, x.id - x.seq
                                               ORDER BY x.seq) AS island
        FROM unnest(p_queue, p_priority, p_shard, p_seq, p_id) AS x(queue, priority, enqueue_shard, seq, id)
    ) AS runs
    GROUP BY queue, priority, enqueue_shard, id - seq, island
$$;

-- Number the committed single inserts of lanes whose enqueue heads the
-- caller holds locked (ADR 0028): from each head's next_seq, in pending_id
-- order; their pending rows are deleted and the heads bumped past them.
-- Must run in a statement that starts after the locks were taken: under READ
-- COMMITTED that statement's snapshot sees every pending row committed by the
-- previous holder of a head and everything committed before it. A job that
-- left the lane before it was numbered (admin cancel) is dropped without a
-- number. Returns the count of jobs numbered.
CREATE OR REPLACE FUNCTION __schema__.sequence_lanes(
    p_queue    text[],
    p_priority smallint[],
    p_shard    smallint[]
)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_q    text[];
    v_p    smallint[];
    v_s    smallint[];
    v_pid  bigint[];
    v_jid  bigint[];
    v_live bigint[];
    v_seq  bigint[];
BEGIN
    WITH taken AS (
        DELETE FROM __schema__.lane_pending AS p
        USING unnest(p_queue, p_priority, p_shard) AS l(queue, priority, enqueue_shard)
        WHERE p.queue = l.queue AND p.priority = l.priority AND p.enqueue_shard = l.enqueue_shard
        RETURNING p.queue, p.priority, p.enqueue_shard, p.pending_id, p.job_id
    )
    SELECT array_agg(queue), array_agg(priority), array_agg(enqueue_shard), array_agg(pending_id), array_agg(job_id)
    INTO v_q, v_p, v_s, v_pid, v_jid
    FROM taken;
    IF v_jid IS NULL THEN
        RETURN 0;
    END IF;
    -- Locked, so a concurrent cancel either went first (the row is no longer
    -- available and gets no number) or waits and then cancels a numbered job.
    v_live := ARRAY(
        SELECT j.id FROM __schema__.jobs AS j
        WHERE j.id = ANY (v_jid) AND j.state = 'available' AND j.lane_seq IS NULL
        ORDER BY j.id
        FOR UPDATE);

    WITH t AS (
        SELECT * FROM unnest(v_q, v_p, v_s, v_pid, v_jid) AS t(queue, priority, enqueue_shard, pending_id, job_id)
        WHERE t.job_id = ANY (v_live)
    ), numbered AS (
        SELECT t.queue, t.priority, t.enqueue_shard, t.job_id,
               h.next_seq - 1 + row_number() OVER (PARTITION BY t.queue, t.priority, t.enqueue_shard
                                                   ORDER BY t.pending_id) AS seq
        FROM t JOIN __schema__.enqueue_heads AS h USING (queue, priority, enqueue_shard)
    ), bumped AS (
        UPDATE __schema__.enqueue_heads AS h
        SET next_seq = h.next_seq + c.n
        FROM (SELECT queue, priority, enqueue_shard, count(*) AS n FROM t GROUP BY 1, 2, 3) AS c
        WHERE h.queue = c.queue AND h.priority = c.priority AND h.enqueue_shard = c.enqueue_shard
    ), updated AS (
        UPDATE __schema__.jobs AS j SET lane_seq = n.seq
        FROM numbered AS n WHERE j.id = n.job_id
        RETURNING n.queue, n.priority, n.enqueue_shard, n.seq, n.job_id
    )
    SELECT array_agg(queue), array_agg(priority), array_agg(enqueue_shard), array_agg(seq), array_agg(job_id)
    INTO v_q, v_p, v_s, v_seq, v_jid
    FROM updated;
    IF v_seq IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM __schema__.insert_lane_segments(v_q, v_p, v_s, v_seq, v_jid);
    RETURN cardinality(v_seq);
END
$$;

-- Take p_count[i] numbers from the enqueue head of lane i (lanes distinct),
-- creating heads on first use; returns each lane's next_seq after the bump,
-- so lane i got next_seq - p_count[i] .. next_seq - 1. Heads are locked in
-- key order and stay locked until the caller's transaction ends: that lock
-- is what makes a reservation's numbers commit-ordered. The lanes' committed
-- single inserts are numbered first (sequence_lanes), so a reservation never
-- overtakes a job that committed before it. Used by enqueue_reserve (COPY),
-- make_available (due scheduled and retryable jobs) and, with counts of 0,
-- by insert_job to create a lane's head.
CREATE OR REPLACE FUNCTION __schema__.bump_enqueue_heads(
    p_queue    text[],
    p_priority smallint[],
    p_shard    smallint[],
    p_count    integer[]
)
RETURNS TABLE (queue text, priority smallint, enqueue_shard smallint, next_seq bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO __schema__.enqueue_heads AS h (queue, priority, enqueue_shard)
    SELECT l.queue, l.priority, l.enqueue_shard
    FROM unnest(p_queue, p_priority, p_shard) AS l(queue, priority, enqueue_shard)
    ORDER BY l.queue, l.priority, l.enqueue_shard
    ON CONFLICT ON CONSTRAINT enqueue_heads_pkey DO UPDATE SET next_seq = h.next_seq;
    PERFORM __schema__.sequence_lanes(p_queue, p_priority, p_shard);
    RETURN QUERY
    UPDATE __schema__.enqueue_heads AS h
    SET next_seq = h.next_seq + l.n
    FROM unnest(p_queue, p_priority, p_shard, p_count) AS l(queue, priority, enqueue_shard, n)
    WHERE h.queue = l.queue AND h.priority = l.priority AND h.enqueue_shard = l.enqueue_shard
    RETURNING h.queue, h.priority, h.enqueue_shard, h.next_seq;
END
$$;

-- run_at of the lane's next available job past the claim cursor p_claim_seq
-- (NULL when there is none): the first segment past the cursor, then a
-- primary-key scan inside it; with no numbered job left, the first pending
-- one. Used by claim_jobs_limited for priority aging
-- and by the lane_stats query. PL/pgSQL on purpose: the planner opens a
-- SQL-language body (to try inlining it) each time a caller is planned, and
-- the claim's lane query is planned on every call; with this body opaque the
-- lane query plans in about half the time it took with the lookup written
-- inline, and the lookup runs only where it is called (once per lane, only
-- when aging is on).
-- COST: two index probes per call, about what the planner estimated for the
-- lookup written inline (~12 units a lane). With the default (100, i.e.
-- 0.25 units) the claim's lane query looked as cheap generic as custom, so
-- after five calls a session switched it to a generic plan, whose other row
-- order hands random() to other lanes: a claim sequence replayed from the
-- same seed then took other equal-priority lanes
-- (tests/machines/test_pinned_regressions.py).
CREATE OR REPLACE FUNCTION __schema__.lane_head_run_at(
    p_queue     text,
    p_priority  smallint,
    p_shard     smallint,
    p_claim_seq bigint
)
RETURNS timestamptz
LANGUAGE plpgsql STABLE COST 5000 AS $$
BEGIN
    RETURN coalesce((
        SELECT j.run_at
        FROM __schema__.lane_segments AS g
        CROSS JOIN LATERAL (
            SELECT j.run_at FROM __schema__.jobs AS j
            WHERE j.id BETWEEN g.first_id + (greatest(g.first_seq, p_claim_seq + 1) - g.first_seq)
                           AND g.first_id + (g.last_seq - g.first_seq)
              AND j.state = 'available'
              AND j.lane_seq = g.first_seq + (j.id - g.first_id)
              AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
            ORDER BY j.id
            LIMIT 1
        ) AS j
        WHERE g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
          AND g.last_seq > p_claim_seq
        ORDER BY g.first_seq
        LIMIT 1
    ), (
        -- no numbered job left: the first committed single insert not yet
        -- numbered (ADR 0028), which the next claim numbers first
        SELECT j.run_at
        FROM __schema__.lane_pending AS p
        JOIN __schema__.jobs AS j ON j.id = p.job_id AND j.state = 'available'
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
        ORDER BY p.pending_id
        LIMIT 1
    ));
END
$$;
