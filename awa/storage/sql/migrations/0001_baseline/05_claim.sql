-- Claims: one walk over the lanes of every asked-for queue, each queue with
-- its own cap. The shared-cap claim_jobs is a thin call of it.

-- Claim from several queues at once, each with its own cap (p_limits, same
-- positions as p_queues; names distinct), and at most p_total in all. One
-- walk over the lanes of every queue: lanes in priority order (random among
-- equals, for fairness across shards and queues); within a lane strictly by
-- lane_seq. The claim head row lock serialises claimers per lane (busy lanes
-- are skipped, never waited for). A queue's jobs are claimed exactly as a call
-- for that queue alone with its cap would claim them: caps are independent and
-- lanes never wait, so one walk costs one lane query instead of one per queue.
CREATE OR REPLACE FUNCTION __schema__.claim_jobs_limited(
    p_queues   text[],
    p_limits   integer[],
    p_total    integer,
    p_now      timestamptz,
    p_deadline interval,
    p_aging    interval DEFAULT NULL
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
-- Array parameters make every custom plan look cheaper than the generic one,
-- so each statement here was planned again on every call (ADR 0029). The
-- settings hold for the functions it calls (key_admit, sequence_lanes, ...).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now        timestamptz := coalesce(p_now, pg_catalog.now());
    v_left       integer[] := p_limits;  -- what each queue may still take
    v_total      integer := p_total;     -- what the whole call may still take
    v_qpos       integer;
    v_lane_cap   integer;
    v_remaining  integer;                -- for the current lane: least(its queue's, the total)
    v_lane       record;
    v_cursor     bigint;
    v_fence      bigint;                 -- the lane's smallest unlifted fence (16_repartition.sql)
    v_next       bigint;
    v_first      bigint[];
    v_last       bigint[];
    v_fid        bigint[];
    v_ids        bigint[];
    v_claim      bigint[] := '{}';  -- ids taken, in walk order
    v_max_seq    bigint;
    v_lane_got   bigint;
    v_last_taken bigint;
    v_new_cursor bigint;
    v_page_full  boolean;
    v_id_lo      bigint;
    v_id_hi      bigint;
    v_id_end     bigint;
    v_policies   text[];  -- per-key concurrency: each queue's key policy (or NULL),
    v_caps       integer[];  -- its limit now, look-ahead and from_ordering_key
    v_looks      integer[];
    v_from_ok    boolean[];
    v_frontier   bigint;     -- the lane's key_frontier, as locked
    v_numbered   boolean;    -- single inserts of the lane were numbered by this claim
    v_keyed      record;
    v_gids       bigint[] := '{}';  -- ids taken from governed lanes, and their keys
    v_gkeys      bytea[] := '{}';   -- (NULL: no key), in the same order
    -- governed lanes' cursor moves, written with the claim (claim_keyed_lane)
    v_mq         text[] := '{}';
    v_mp         smallint[] := '{}';
    v_ms         smallint[] := '{}';
    v_mold       bigint[] := '{}';
    v_mnew       bigint[] := '{}';
    v_mbehind    integer[] := '{}';
    v_mtaken     integer[] := '{}';
    v_mfrontier  bigint[] := '{}';
BEGIN
    IF p_total <= 0 OR coalesce(cardinality(p_queues), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_limits) IS DISTINCT FROM cardinality(p_queues) THEN
        RAISE EXCEPTION 'claim_jobs_limited: % limits for % queues', cardinality(p_limits), cardinality(p_queues);
    END IF;
    -- Per-key concurrency (15_key_concurrency.sql): the shared catalog lock,
    -- taken before any claim head, then, in a later statement (whose
    -- snapshot sees every policy change committed before the lock was
    -- granted), each queue's key policy by position (NULL: none). They stay
    -- authoritative until the claim commits. Both here, not in functions of
    -- their own: on every claim, a PL/pgSQL call costs more than they do.
    PERFORM pg_advisory_xact_lock_shared(__schema__.key_catalog_lock_id(), 20);
    SELECT array_agg(p.name ORDER BY u.ord),
           array_agg(least(p.max_in_flight, coalesce(p.pending_max, p.max_in_flight)) ORDER BY u.ord),
           array_agg(p.look_ahead ORDER BY u.ord), array_agg(p.from_ordering_key ORDER BY u.ord)
    INTO v_policies, v_caps, v_looks, v_from_ok
    FROM unnest(p_queues) WITH ORDINALITY AS u(q, ord)
    LEFT JOIN __schema__.key_policies AS p ON p.name = __schema__.logical_queue(u.q);

    -- New lanes get their claim heads first, all together and in key order.
    -- (Created one by one during the walk, which visits lanes in random order,
    -- two claimers could each wait for the other's uncommitted head: a
    -- deadlock.) A lane whose head appears later is simply skipped this time.
    INSERT INTO __schema__.claim_heads (queue, priority, enqueue_shard)
    SELECT e.queue, e.priority, e.enqueue_shard
    FROM __schema__.enqueue_heads AS e
    WHERE e.queue = ANY (p_queues)
      AND NOT EXISTS (SELECT 1 FROM __schema__.claim_heads AS c
                      WHERE c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard)
    ORDER BY e.queue, e.priority, e.enqueue_shard
    ON CONFLICT DO NOTHING;

    FOR v_lane IN
        SELECT e.queue, e.priority, e.enqueue_shard, c.claim_seq, e.next_seq,
               e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0) <= 0 AS only_pending
        FROM __schema__.enqueue_heads AS e
        JOIN __schema__.queues AS q ON q.name = e.queue AND NOT q.paused
        LEFT JOIN __schema__.claim_heads AS c
               ON c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard
        -- Priority aging (optional): a lane whose next job has waited k
        -- intervals competes as if its priority were k levels higher (not
        -- above 1); ties go to the lane whose next job waited longest. Only
        -- computed when asked for.
        -- OFFSET 0 keeps the lookup in its subquery: pulled up, it would be
        -- called once per mention in the ORDER BY instead of once per lane.
        LEFT JOIN LATERAL (
            SELECT __schema__.lane_head_run_at(e.queue, e.priority, e.enqueue_shard, coalesce(c.claim_seq, 0))
                   AS head_run_at
            WHERE p_aging IS NOT NULL
            OFFSET 0
        ) AS h ON true
        WHERE e.queue = ANY (p_queues)
          AND p_limits[array_position(p_queues, e.queue)] > 0
          AND (e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0) > 0
               OR EXISTS (SELECT 1 FROM __schema__.lane_pending AS p
                          WHERE p.queue = e.queue AND p.priority = e.priority
                            AND p.enqueue_shard = e.enqueue_shard))
          AND (c.fence_seq IS NULL OR c.claim_seq < c.fence_seq)
        ORDER BY
            -- (numeric, not integer: a long wait over a short interval is more than 2^31 steps)
            CASE WHEN h.head_run_at IS NULL THEN e.priority
                 ELSE greatest(1, e.priority - floor(extract(epoch FROM v_now - h.head_run_at)
                                                     / extract(epoch FROM p_aging)))
            END,
            h.head_run_at,  -- equal effective priority: the longer-waiting lane first
            e.priority, random()
    LOOP
        EXIT WHEN v_total <= 0;
        v_qpos := array_position(p_queues, v_lane.queue);
        v_lane_cap := least(v_left[v_qpos], v_total);
        CONTINUE WHEN v_lane_cap <= 0;
        v_remaining := v_lane_cap;
        v_numbered := false;

        SELECT c.claim_seq, c.fence_seq, c.key_frontier INTO v_cursor, v_fence, v_frontier
        FROM __schema__.claim_heads AS c
        WHERE c.queue = v_lane.queue AND c.priority = v_lane.priority
          AND c.enqueue_shard = v_lane.enqueue_shard
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;

        -- Number the lane's committed single inserts first (ADR 0028), under
        -- its enqueue head, taken SKIP LOCKED: a COPY holding it numbered
        -- them before it reserved. sequence_lanes is a later statement, so
        -- it sees what the head's previous holder committed.
        IF EXISTS (SELECT 1 FROM __schema__.lane_pending AS p
                   WHERE p.queue = v_lane.queue AND p.priority = v_lane.priority
                     AND p.enqueue_shard = v_lane.enqueue_shard) THEN
            PERFORM 1 FROM __schema__.enqueue_heads AS e
            WHERE e.queue = v_lane.queue AND e.priority = v_lane.priority
              AND e.enqueue_shard = v_lane.enqueue_shard
            FOR UPDATE SKIP LOCKED;
            IF FOUND THEN
                PERFORM __schema__.sequence_lanes(ARRAY[v_lane.queue], ARRAY[v_lane.priority],
                                                  ARRAY[v_lane.enqueue_shard]);
                v_numbered := true;
            ELSIF v_lane.only_pending THEN
                CONTINUE;
            END IF;
        END IF;

        -- Per-key concurrency (15_key_concurrency.sql): a governed queue's
        -- lane is claimed by claim_keyed_lane; its cursor's move is written
        -- with the claim, below (a statement of its own per lane cost more
        -- than the move).
        IF v_policies[v_qpos] IS NOT NULL THEN
            -- The walk's next_seq was read before any job (enough: a job
            -- numbered later waits for the next claim), unless this claim
            -- numbered the lane's single inserts just now.
            IF v_numbered THEN
                SELECT e.next_seq INTO v_next FROM __schema__.enqueue_heads AS e
                WHERE e.queue = v_lane.queue AND e.priority = v_lane.priority
                  AND e.enqueue_shard = v_lane.enqueue_shard;
            ELSE
                v_next := v_lane.next_seq;
            END IF;
            -- (an assignment: a plain call, where SELECT * FROM would scan its result)
            v_keyed := __schema__.claim_keyed_lane(v_lane.queue, v_lane.priority, v_lane.enqueue_shard,
                                                   v_policies[v_qpos], v_caps[v_qpos], v_looks[v_qpos],
                                                   v_from_ok[v_qpos], v_next, v_fence, v_frontier, v_cursor,
                                                   v_remaining, v_gkeys);
            v_ids := v_keyed.taken_ids;
            IF v_keyed.new_cursor > v_cursor OR cardinality(v_ids) > 0
               OR v_keyed.lane_frontier IS DISTINCT FROM v_frontier THEN
                v_mq := v_mq || v_lane.queue;
                v_mp := v_mp || v_lane.priority;
                v_ms := v_ms || v_lane.enqueue_shard;
                v_mold := v_mold || v_cursor;
                v_mnew := v_mnew || v_keyed.new_cursor;
                v_mbehind := v_mbehind || v_keyed.taken_behind;
                v_mtaken := v_mtaken || cardinality(v_ids);
                v_mfrontier := v_mfrontier || v_keyed.lane_frontier;
            END IF;
            v_claim := v_claim || v_ids;
            v_gids := v_gids || v_ids;
            v_gkeys := v_gkeys || v_keyed.taken_keys;
            v_left[v_qpos] := v_left[v_qpos] - cardinality(v_ids);
            v_total := v_total - cardinality(v_ids);
            CONTINUE;
        END IF;
        -- End of per-key concurrency.

        -- Segments are read a page at a time. Each page: one snapshot, taken
        -- after the head lock, for the lane head and the next segments past
        -- the cursor. Every committed job numbered below next_seq is reachable
        -- through segments, so a lane drained in that snapshot may move its
        -- cursor to next_seq - 1.
        LOOP
            SELECT e.next_seq, s.firsts, s.lasts, s.fids
            INTO v_next, v_first, v_last, v_fid
            FROM __schema__.enqueue_heads AS e
            CROSS JOIN LATERAL (
                SELECT array_agg(g.first_seq ORDER BY g.first_seq) AS firsts,
                       array_agg(g.last_seq ORDER BY g.first_seq) AS lasts,
                       array_agg(g.first_id ORDER BY g.first_seq) AS fids
                FROM (
                    SELECT * FROM __schema__.lane_segments AS g
                    WHERE g.queue = v_lane.queue AND g.priority = v_lane.priority
                      AND g.enqueue_shard = v_lane.enqueue_shard AND g.last_seq > v_cursor
                    ORDER BY g.first_seq
                    LIMIT 64
                ) AS g
            ) AS s
            WHERE e.queue = v_lane.queue AND e.priority = v_lane.priority
              AND e.enqueue_shard = v_lane.enqueue_shard;
            v_page_full := coalesce(cardinality(v_first), 0) = 64;
            -- A fenced lane hands out numbers up to its fence only (ADR 0024):
            -- past it the lane counts as drained.
            IF v_fence IS NOT NULL AND v_next > v_fence + 1 THEN
                v_next := v_fence + 1;
                IF v_page_full AND v_last[64] >= v_fence THEN
                    v_page_full := false;
                END IF;
            END IF;

            v_lane_got := 0;
            v_last_taken := v_cursor;
            FOR i IN 1 .. coalesce(cardinality(v_first), 0) LOOP
                EXIT WHEN v_remaining <= 0 OR v_first[i] >= v_next;
                -- Consecutive ids: primary-key ranges in lane order, a bounded
                -- window at a time so the cost follows the claim size, not
                -- the segment size. A job that left the lane (cancelled) no
                -- longer matches: a hole.
                v_id_lo := v_fid[i] + (greatest(v_first[i], v_cursor + 1) - v_first[i]);
                v_id_end := v_fid[i] + (least(v_last[i], v_next - 1) - v_first[i]);
                LOOP
                    v_id_hi := least(v_id_lo + greatest(2 * v_remaining, 32) - 1, v_id_end);
                    SELECT array_agg(p.id ORDER BY p.id), max(p.lane_seq) INTO v_ids, v_max_seq
                    FROM (
                        SELECT j.id, j.lane_seq FROM __schema__.jobs AS j
                        WHERE j.id BETWEEN v_id_lo AND v_id_hi
                          AND j.state = 'available'
                          AND j.lane_seq = v_first[i] + (j.id - v_fid[i])
                          AND j.queue = v_lane.queue AND j.priority = v_lane.priority
                          AND j.enqueue_shard = v_lane.enqueue_shard
                        ORDER BY j.id
                        LIMIT v_remaining
                    ) AS p;
                    IF v_ids IS NOT NULL THEN
                        -- Marked running once, for every lane, after the walk.
                        v_claim := v_claim || v_ids;
                        v_remaining := v_remaining - cardinality(v_ids);
                        v_lane_got := v_lane_got + cardinality(v_ids);
                    END IF;
                    IF v_remaining <= 0 THEN
                        v_last_taken := v_max_seq;
                        EXIT;
                    END IF;
                    -- everything up to v_id_hi was claimed or a hole
                    v_last_taken := v_first[i] + (v_id_hi - v_fid[i]);
                    EXIT WHEN v_id_hi >= v_id_end;
                    v_id_lo := v_id_hi + 1;
                END LOOP;
            END LOOP;

            IF v_remaining > 0 AND NOT v_page_full THEN
                v_new_cursor := greatest(v_cursor, v_next - 1);  -- drained in this snapshot
            ELSE
                v_new_cursor := greatest(v_cursor, v_last_taken);
            END IF;
            -- Numbers passed over without a claim were holes.
            UPDATE __schema__.claim_heads AS c
            SET claim_seq = v_new_cursor,
                holes = greatest(c.holes - ((v_new_cursor - v_cursor) - v_lane_got), 0)
            WHERE c.queue = v_lane.queue AND c.priority = v_lane.priority
              AND c.enqueue_shard = v_lane.enqueue_shard;
            IF cardinality(v_last) > 0 AND v_last[1] <= v_new_cursor THEN
                DELETE FROM __schema__.lane_segments AS g
                WHERE g.queue = v_lane.queue AND g.priority = v_lane.priority
                  AND g.enqueue_shard = v_lane.enqueue_shard AND g.last_seq <= v_new_cursor;
            END IF;
            EXIT WHEN v_remaining <= 0 OR NOT v_page_full;
            v_cursor := v_new_cursor;
        END LOOP;
        -- What this lane took counts against its queue and the whole call.
        v_left[v_qpos] := v_left[v_qpos] - (v_lane_cap - v_remaining);
        v_total := v_total - (v_lane_cap - v_remaining);
    END LOOP;

    -- One UPDATE for all lanes (one per lane and window cost a statement
    -- each). Safe to defer: every row in v_claim is an available job of a lane
    -- whose claim head this transaction holds, and nothing moves such a row
    -- without that lock (claims take it; cancel_job waits for it). Rows come
    -- back in walk order: lane by lane, each in lane order.
    -- The governed lanes' cursor moves go with it, safe to defer for the same
    -- reason (their claim heads and segments are read and written only under
    -- the head): numbers a cursor passes that were not taken are holes, and
    -- so are the numbers taken past it; the segments it passed go; the
    -- frontier is kept only while it is past the cursor (claim_keyed_lane
    -- returns it so).
    IF cardinality(v_claim) > 0 OR cardinality(v_mq) > 0 THEN
        RETURN QUERY
        WITH moves AS (
            SELECT * FROM unnest(v_mq, v_mp, v_ms, v_mold, v_mnew, v_mbehind, v_mtaken, v_mfrontier)
                AS m(queue, priority, shard, old_seq, new_seq, behind, taken, frontier)
        ), heads AS (
            UPDATE __schema__.claim_heads AS c
            SET claim_seq = m.new_seq,
                holes = greatest(c.holes - ((m.new_seq - m.old_seq) - m.behind), 0) + (m.taken - m.behind),
                key_frontier = m.frontier
            FROM moves AS m
            WHERE c.queue = m.queue AND c.priority = m.priority AND c.enqueue_shard = m.shard
        ), passed AS (
            DELETE FROM __schema__.lane_segments AS g
            USING moves AS m
            WHERE m.new_seq > m.old_seq
              AND g.queue = m.queue AND g.priority = m.priority AND g.enqueue_shard = m.shard
              AND g.last_seq <= m.new_seq
        ), claimed AS (
            UPDATE __schema__.jobs AS j
            SET state = 'running',
                attempt = j.attempt + 1,
                run_lease = j.run_lease + 1,
                attempted_at = v_now,
                heartbeat_at = v_now,
                deadline_at = v_now + p_deadline,
                -- the key it was granted: from now on the row is the grant
                -- (15_key_concurrency.sql); NULL for every other job
                granted_key = v_gkeys[array_position(v_gids, j.id)]
            WHERE j.id = ANY (v_claim)  -- a primary-key lookup (a join here plans a scan)
            RETURNING j.*
        )
        SELECT c.* FROM claimed AS c
        JOIN unnest(v_claim) WITH ORDINALITY AS u(id, ord) ON u.id = c.id
        ORDER BY u.ord;
    END IF;
END
$$;

-- The shared-cap form: every queue may take up to p_limit, p_limit in all.
CREATE OR REPLACE FUNCTION __schema__.claim_jobs(
    p_queues   text[],
    p_limit    integer,
    p_now      timestamptz,
    p_deadline interval,
    p_aging    interval DEFAULT NULL
)
RETURNS SETOF __schema__.jobs
LANGUAGE sql AS $$
    SELECT * FROM __schema__.claim_jobs_limited(
        p_queues, array_fill(greatest(p_limit, 0), ARRAY[coalesce(cardinality(p_queues), 0)]),
        p_limit, p_now, p_deadline, p_aging)
$$;
