-- Queue storage functions: lane reservation, claims, lifecycle transitions.
--
-- Every function takes p_now (NULL = the database clock) so tests can drive
-- time explicitly. Lock order everywhere: claim head -> job rows, and job rows
-- -> enqueue heads (heads always in (queue, priority, enqueue_shard) order),
-- which keeps producers, claimers, promotion and admin paths deadlock-free.

-- One round trip before a producer's COPY: register queues, check the
-- producer's view of enqueue_shards, reserve lane ranges, allocate ids,
-- record lane segments and queue the wake-ups. Ids are handed back as runs
-- of consecutive values (id_starts / id_lengths), in lane order.
CREATE OR REPLACE FUNCTION __schema__.enqueue_reserve(
    p_queues          text[],
    p_expected_shards smallint[],
    p_lane_queue      text[],
    p_lane_priority   smallint[],
    p_lane_shard      smallint[],
    p_lane_count      integer[],
    p_run_at          timestamptz,
    p_now             timestamptz,
    p_id_count        integer,
    p_channel         text,
    OUT db_now        timestamptz,
    OUT scheduled     boolean,
    OUT shards_ok     boolean,
    OUT shards        smallint[],
    OUT lane_starts   bigint[],
    OUT id_starts     bigint[],
    OUT id_lengths    integer[]
)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq regclass;
    v_ids bigint[];
BEGIN
    db_now := coalesce(p_now, pg_catalog.now());

    INSERT INTO __schema__.queues (name)
    SELECT q FROM unnest(p_queues) AS q ORDER BY q
    ON CONFLICT (name) DO NOTHING;

    SELECT array_agg(qs.enqueue_shards ORDER BY u.ord) INTO shards
    FROM unnest(p_queues) WITH ORDINALITY AS u(name, ord)
    JOIN __schema__.queues AS qs ON qs.name = u.name;

    shards_ok := shards IS NOT DISTINCT FROM p_expected_shards;
    scheduled := p_run_at IS NOT NULL AND p_run_at > db_now;
    IF NOT shards_ok THEN
        RETURN;  -- the producer re-routes with the returned counts and calls again
    END IF;

    -- Ids for every row, in lane order, handed back as runs of consecutive
    -- values (ids of one call strictly increase; a run breaks only where
    -- another session took a cached block in between).
    v_seq := pg_get_serial_sequence('__schema__.jobs', 'id')::regclass;
    v_ids := ARRAY(SELECT nextval(v_seq) FROM generate_series(1, p_id_count));
    IF p_id_count > 0 AND v_ids[p_id_count] - v_ids[1] = p_id_count - 1 THEN
        id_starts := ARRAY[v_ids[1]];
        id_lengths := ARRAY[p_id_count];
    ELSE
        SELECT array_agg(r.first_id ORDER BY r.pos), array_agg(r.len ORDER BY r.pos)
        INTO id_starts, id_lengths
        FROM (
            SELECT min(u.id) AS first_id, count(*)::integer AS len, min(u.i) AS pos
            FROM unnest(v_ids) WITH ORDINALITY AS u(id, i)
            GROUP BY u.id - u.i
        ) AS r;
    END IF;

    IF scheduled OR coalesce(cardinality(p_lane_queue), 0) = 0 THEN
        RETURN;  -- scheduled rows get their lane number when they become due
    END IF;

    -- The upsert keeps each head row locked until this transaction ends:
    -- that lock is what makes lane_seq commit-ordered.
    WITH lanes AS (
        SELECT l.*, (sum(l.n) OVER (ORDER BY l.ord) - l.n)::integer AS off
        FROM unnest(p_lane_queue, p_lane_priority, p_lane_shard, p_lane_count)
            WITH ORDINALITY AS l(queue, priority, enqueue_shard, n, ord)
    ), bumped AS (
        INSERT INTO __schema__.enqueue_heads AS h (queue, priority, enqueue_shard, next_seq)
        SELECT queue, priority, enqueue_shard, 1 + n FROM lanes
        ORDER BY queue, priority, enqueue_shard
        ON CONFLICT (queue, priority, enqueue_shard)
        DO UPDATE SET next_seq = h.next_seq + (excluded.next_seq - 1)
        RETURNING h.queue, h.priority, h.enqueue_shard, h.next_seq
    ), started AS (
        SELECT l.*, b.next_seq - l.n AS start
        FROM lanes AS l JOIN bumped AS b USING (queue, priority, enqueue_shard)
    ), runs AS (
        -- 0-based positions in the id list: run r covers pos .. pos + len - 1
        SELECT r.first_id, r.len, (sum(r.len) OVER (ORDER BY r.k) - r.len)::integer AS pos
        FROM unnest(id_starts, id_lengths) WITH ORDINALITY AS r(first_id, len, k)
    ), segments AS (
        -- A lane's rows sit at positions off .. off + n - 1; each overlap of a
        -- lane with a run of consecutive ids is one segment.
        INSERT INTO __schema__.lane_segments (queue, priority, enqueue_shard, first_seq, last_seq, first_id)
        SELECT s.queue, s.priority, s.enqueue_shard,
               s.start + (greatest(s.off, r.pos) - s.off),
               s.start + (least(s.off + s.n, r.pos + r.len) - 1 - s.off),
               r.first_id + (greatest(s.off, r.pos) - r.pos)
        FROM started AS s
        JOIN runs AS r ON r.pos < s.off + s.n AND r.pos + r.len > s.off
    )
    SELECT array_agg(start ORDER BY ord) INTO lane_starts FROM started;

    PERFORM pg_notify(p_channel, t.q)
    FROM (SELECT DISTINCT unnest(p_lane_queue) AS q) AS t;
END
$$;

-- Move locked scheduled/retryable rows into their own lanes with fresh
-- numbers from the lane head (same commit-order guarantee as producers) and
-- record the lane segments that lead claimers to them.
CREATE OR REPLACE FUNCTION __schema__.make_available(p_ids bigint[], p_channel text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count  integer;
    v_queues text[];
BEGIN
    SELECT array_agg(DISTINCT queue) INTO v_queues
    FROM __schema__.jobs
    WHERE id = ANY (p_ids) AND state IN ('scheduled', 'retryable');
    IF v_queues IS NULL THEN
        RETURN 0;
    END IF;

    WITH moving AS (
        SELECT id, queue, priority, enqueue_shard, run_at
        FROM __schema__.jobs
        WHERE id = ANY (p_ids) AND state IN ('scheduled', 'retryable')
    ), lanes AS (
        SELECT queue, priority, enqueue_shard, count(*)::bigint AS n
        FROM moving GROUP BY queue, priority, enqueue_shard
    ), bumped AS (
        INSERT INTO __schema__.enqueue_heads AS h (queue, priority, enqueue_shard, next_seq)
        SELECT queue, priority, enqueue_shard, 1 + n FROM lanes
        ORDER BY queue, priority, enqueue_shard
        ON CONFLICT (queue, priority, enqueue_shard)
        DO UPDATE SET next_seq = h.next_seq + (excluded.next_seq - 1)
        RETURNING h.queue, h.priority, h.enqueue_shard, h.next_seq
    ), numbered AS (
        SELECT m.id, m.queue, m.priority, m.enqueue_shard,
               b.next_seq - l.n - 1
                 + row_number() OVER (PARTITION BY m.queue, m.priority, m.enqueue_shard
                                      ORDER BY m.run_at, m.id) AS seq
        FROM moving AS m
        JOIN lanes AS l USING (queue, priority, enqueue_shard)
        JOIN bumped AS b USING (queue, priority, enqueue_shard)
    ), segments AS (
        -- Maximal runs where both the lane number and the id go up by one.
        INSERT INTO __schema__.lane_segments (queue, priority, enqueue_shard, first_seq, last_seq, first_id)
        SELECT queue, priority, enqueue_shard, min(seq), max(seq), min(id)
        FROM (
            SELECT x.*, x.seq - row_number() OVER (PARTITION BY x.queue, x.priority, x.enqueue_shard, x.id - x.seq
                                                   ORDER BY x.seq) AS island
            FROM numbered AS x
        ) AS runs
        GROUP BY queue, priority, enqueue_shard, id - seq, island
    )
    UPDATE __schema__.jobs AS j
    SET state = 'available', lane_seq = numbered.seq, heartbeat_at = NULL, deadline_at = NULL
    FROM numbered
    WHERE j.id = numbered.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;

    PERFORM pg_notify(p_channel, q) FROM unnest(v_queues) AS q;
    RETURN v_count;
END
$$;

CREATE OR REPLACE FUNCTION __schema__.promote_due(p_now timestamptz, p_limit integer, p_channel text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(id) INTO v_ids FROM (
        SELECT id FROM __schema__.jobs
        WHERE state IN ('scheduled', 'retryable')
          AND run_at <= coalesce(p_now, pg_catalog.now())
        ORDER BY run_at, id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS due;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    RETURN __schema__.make_available(v_ids, p_channel);
END
$$;

-- Claim up to p_limit jobs from the given queues: lanes in priority order
-- (random among equals, for fairness across shards and queues); within a lane
-- strictly by lane_seq. The claim head row lock serialises claimers per lane
-- (busy lanes are skipped, never waited for).
CREATE OR REPLACE FUNCTION __schema__.claim_jobs(
    p_queues   text[],
    p_limit    integer,
    p_now      timestamptz,
    p_deadline interval,
    p_aging    interval DEFAULT NULL
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql AS $$
DECLARE
    v_now        timestamptz := coalesce(p_now, pg_catalog.now());
    v_remaining  integer := p_limit;
    v_lane       record;
    v_cursor     bigint;
    v_next       bigint;
    v_first      bigint[];
    v_last       bigint[];
    v_fid        bigint[];
    v_ids        bigint[];
    v_max_seq    bigint;
    v_lane_got   bigint;
    v_last_taken bigint;
    v_new_cursor bigint;
    v_page_full  boolean;
    v_id_lo      bigint;
    v_id_hi      bigint;
    v_id_end     bigint;
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    FOR v_lane IN
        SELECT e.queue, e.priority, e.enqueue_shard, c.claim_seq
        FROM __schema__.enqueue_heads AS e
        JOIN __schema__.queues AS q ON q.name = e.queue AND NOT q.paused
        LEFT JOIN __schema__.claim_heads AS c
               ON c.queue = e.queue AND c.priority = e.priority AND c.enqueue_shard = e.enqueue_shard
        -- Priority aging (optional): a lane whose next job has waited k
        -- intervals competes as if its priority were k levels higher (not
        -- above 1); ties go to the lane whose next job waited longest. Only
        -- computed when asked for.
        LEFT JOIN LATERAL (
            SELECT j.run_at AS head_run_at
            FROM __schema__.lane_segments AS g
            CROSS JOIN LATERAL (
                SELECT j.run_at FROM __schema__.jobs AS j
                WHERE j.id BETWEEN g.first_id + (greatest(g.first_seq, coalesce(c.claim_seq, 0) + 1) - g.first_seq)
                               AND g.first_id + (g.last_seq - g.first_seq)
                  AND j.state = 'available'
                  AND j.lane_seq = g.first_seq + (j.id - g.first_id)
                ORDER BY j.id
                LIMIT 1
            ) AS j
            WHERE p_aging IS NOT NULL
              AND g.queue = e.queue AND g.priority = e.priority AND g.enqueue_shard = e.enqueue_shard
              AND g.last_seq > coalesce(c.claim_seq, 0)
            ORDER BY g.first_seq
            LIMIT 1
        ) AS h ON true
        WHERE e.queue = ANY (p_queues)
          AND e.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0) > 0
        ORDER BY
            CASE WHEN h.head_run_at IS NULL THEN e.priority
                 ELSE greatest(1, e.priority - floor(extract(epoch FROM v_now - h.head_run_at)
                                                     / extract(epoch FROM p_aging))::integer)
            END,
            h.head_run_at,  -- equal effective priority: the longer-waiting lane first
            e.priority, random()
    LOOP
        EXIT WHEN v_remaining <= 0;
        IF v_lane.claim_seq IS NULL THEN
            INSERT INTO __schema__.claim_heads (queue, priority, enqueue_shard)
            VALUES (v_lane.queue, v_lane.priority, v_lane.enqueue_shard)
            ON CONFLICT DO NOTHING;
        END IF;

        SELECT c.claim_seq INTO v_cursor
        FROM __schema__.claim_heads AS c
        WHERE c.queue = v_lane.queue AND c.priority = v_lane.priority
          AND c.enqueue_shard = v_lane.enqueue_shard
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;

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

            v_lane_got := 0;
            v_last_taken := v_cursor;
            FOR i IN 1 .. coalesce(cardinality(v_first), 0) LOOP
                EXIT WHEN v_remaining <= 0;
                -- Consecutive ids: primary-key ranges in lane order, a bounded
                -- window at a time so the cost follows the claim size, not
                -- the segment size. A job that left the lane (cancelled) no
                -- longer matches: a hole.
                v_id_lo := v_fid[i] + (greatest(v_first[i], v_cursor + 1) - v_first[i]);
                v_id_end := v_fid[i] + (v_last[i] - v_first[i]);
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
                        RETURN QUERY
                        WITH claimed AS (
                            UPDATE __schema__.jobs AS j
                            SET state = 'running',
                                attempt = j.attempt + 1,
                                run_lease = j.run_lease + 1,
                                attempted_at = v_now,
                                heartbeat_at = v_now,
                                deadline_at = v_now + p_deadline
                            WHERE j.id = ANY (v_ids)
                            RETURNING j.*
                        )
                        SELECT * FROM claimed ORDER BY claimed.lane_seq;
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
    END LOOP;
END
$$;

-- Move a (locked) failed job to the dead-letter table.
CREATE OR REPLACE FUNCTION __schema__.dead_letter(p_id bigint, p_reason text, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
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
LANGUAGE plpgsql AS $$
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
LANGUAGE plpgsql AS $$
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

-- Admin cancel without a lease: any non-terminal state. Cancelling an
-- available job takes its lane's claim head first, so a claimer never sees a
-- lane change under it.
CREATE OR REPLACE FUNCTION __schema__.cancel_job(p_id bigint, p_now timestamptz)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql AS $$
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
            IF v_job.state = 'available' THEN
                -- Its number stays behind in the lane as a hole.
                UPDATE __schema__.claim_heads
                SET holes = holes + 1
                WHERE queue = v_job.queue AND priority = v_job.priority
                  AND enqueue_shard = v_job.enqueue_shard;
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
LANGUAGE plpgsql AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, pg_catalog.now());
    v_queue text;
BEGIN
    WITH moved AS (
        DELETE FROM __schema__.dlq_entries WHERE id = p_id RETURNING *
    )
    INSERT INTO __schema__.jobs (
        id, run_lease, lane_seq, run_at, created_at, state, priority, max_attempts,
        attempt, enqueue_shard, kind, queue, ordering_key, args, errors, tags, metadata)
    SELECT id, run_lease, NULL, coalesce(p_run_at, v_now), created_at, 'scheduled',
           coalesce(p_priority, priority), max_attempts, 0, coalesce(p_shard, enqueue_shard),
           kind, coalesce(p_queue, queue), ordering_key, args, errors, tags, metadata
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

-- One job in one statement (one round trip in autocommit): the same
-- reservation as a batch, then a plain INSERT. Returns no row when the
-- caller's enqueue_shards is stale (it refreshes and calls again).
CREATE OR REPLACE FUNCTION __schema__.insert_job(
    p_queue           text,
    p_expected_shards smallint,
    p_priority        smallint,
    p_shard           smallint,
    p_kind            text,
    p_args            jsonb,
    p_max_attempts    smallint,
    p_tags            text[],
    p_metadata        jsonb,
    p_ordering_key    bytea,
    p_run_at          timestamptz,
    p_now             timestamptz,
    p_channel         text
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM __schema__.enqueue_reserve(
        ARRAY[p_queue], ARRAY[p_expected_shards], ARRAY[p_queue], ARRAY[p_priority], ARRAY[p_shard],
        ARRAY[1], p_run_at, p_now, 1, p_channel);
    IF NOT r.shards_ok THEN
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO __schema__.jobs (
        id, queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
        kind, args, tags, metadata, ordering_key)
    VALUES (
        r.id_starts[1], p_queue, p_priority, p_max_attempts,
        CASE WHEN r.scheduled THEN 'scheduled' ELSE 'available' END::__schema__.job_state,
        p_shard, CASE WHEN r.scheduled THEN NULL ELSE r.lane_starts[1] END,
        coalesce(p_run_at, r.db_now), r.db_now,
        p_kind, p_args, p_tags, p_metadata, p_ordering_key)
    RETURNING *;
END
$$;
