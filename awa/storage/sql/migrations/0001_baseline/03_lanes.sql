-- Lane heads: the one place that takes numbers from a lane's enqueue head,
-- and the one lookup of a lane's next job.
--
-- Every function takes p_now (NULL = the database clock) so tests can drive
-- time explicitly. Lock order everywhere: claim head -> job rows, and job rows
-- -> enqueue heads (heads always in (queue, priority, enqueue_shard) order),
-- which keeps producers, claimers, promotion and admin paths deadlock-free.

-- Take p_count[i] numbers from the enqueue head of lane i (lanes distinct),
-- creating heads on first use; returns each lane's next_seq after the bump,
-- so lane i got next_seq - p_count[i] .. next_seq - 1. Heads are locked in
-- key order and stay locked until the caller's transaction ends: that lock
-- is what makes lane_seq commit-ordered. Used by enqueue_reserve (new jobs)
-- and make_available (due scheduled and retryable jobs).
CREATE OR REPLACE FUNCTION __schema__.bump_enqueue_heads(
    p_queue    text[],
    p_priority smallint[],
    p_shard    smallint[],
    p_count    integer[]
)
RETURNS TABLE (queue text, priority smallint, enqueue_shard smallint, next_seq bigint)
LANGUAGE sql AS $$
    INSERT INTO __schema__.enqueue_heads AS h (queue, priority, enqueue_shard, next_seq)
    SELECT l.queue, l.priority, l.enqueue_shard, 1 + l.n
    FROM unnest(p_queue, p_priority, p_shard, p_count) AS l(queue, priority, enqueue_shard, n)
    ORDER BY l.queue, l.priority, l.enqueue_shard
    ON CONFLICT (queue, priority, enqueue_shard)
    DO UPDATE SET next_seq = h.next_seq + (excluded.next_seq - 1)
    RETURNING h.queue, h.priority, h.enqueue_shard, h.next_seq
$$;

-- run_at of the lane's next available job past the claim cursor p_claim_seq
-- (NULL when there is none): the first segment past the cursor, then a
-- primary-key scan inside it. Used by claim_jobs_limited for priority aging
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
    RETURN (
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
    );
END
$$;
