-- Jobs enter lanes: producers' reservations (batches and single inserts),
-- and deferred jobs that become due.

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
    p_expected_widths integer[],  -- route_widths as the producer routed (16_repartition.sql)
    OUT db_now        timestamptz,
    OUT scheduled     boolean,
    OUT shards_ok     boolean,
    OUT shards        smallint[],
    OUT lane_starts   bigint[],
    OUT id_starts     bigint[],
    OUT id_lengths    integer[],
    OUT widths_ok     boolean,
    OUT widths        integer[]
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan  -- ADR 0029
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_seq regclass;
    v_ids bigint[];
BEGIN
    db_now := coalesce(p_now, pg_catalog.now());

    -- The keys of registered logical queues, shared, and the widths their
    -- keyed rows must be routed with; the producer re-routes when it used others.
    widths := __schema__.route_widths(p_queues);
    widths_ok := widths IS NOT DISTINCT FROM p_expected_widths;
    IF NOT widths_ok THEN
        RETURN;
    END IF;

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

    -- The heads stay locked until this transaction ends (bump_enqueue_heads).
    WITH lanes AS (
        SELECT l.*, (sum(l.n) OVER (ORDER BY l.ord) - l.n)::integer AS off
        FROM unnest(p_lane_queue, p_lane_priority, p_lane_shard, p_lane_count)
            WITH ORDINALITY AS l(queue, priority, enqueue_shard, n, ord)
    ), bumped AS (
        SELECT * FROM __schema__.bump_enqueue_heads(p_lane_queue, p_lane_priority, p_lane_shard, p_lane_count)
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

-- One job in one statement (one round trip in autocommit), written for one
-- row rather than as a batch of one: the batch path's array plumbing (unnest,
-- window functions, id runs) cost a single insert about half its server time.
-- Returns no row when the caller's enqueue_shards is stale (it refreshes and
-- calls again). No lane lock and no lane number (ADR 0028): the job row and a
-- lane_pending row, and whoever next holds the lane's enqueue head numbers it.
-- pg_notify only when the lane looked empty to this statement: no numbered
-- job past the claim cursor and no committed pending row (ADR 0023, 0028).
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
    p_channel         text,
    p_concurrency_key bytea DEFAULT NULL,  -- per-key concurrency (15_key_concurrency.sql)
    -- mark the queue for the fast statement (17_insert_fast.sql): only when
    -- this call is a transaction of its own, which the queue row's lock ends with
    p_mark_fast       boolean DEFAULT false
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_now    timestamptz := coalesce(p_now, pg_catalog.now());
    v_shards smallint;
    v_next   bigint;  -- the lane head's next_seq
    v_empty  boolean;
    v_job    __schema__.jobs;
    v_fast   boolean;  -- queues.fast_inserts (17_insert_fast.sql)
    -- A registered logical queue's key is taken shared and, after a width
    -- change, the job routed with the current width (16_repartition.sql).
    v_queue  text := __schema__.route_queue(p_queue, p_ordering_key);
    v_shard  smallint := p_shard;
BEGIN
    -- Registered on first use only: an INSERT ... ON CONFLICT per call pays
    -- for a conflicting insertion attempt every time.
    SELECT q.enqueue_shards, q.fast_inserts INTO v_shards, v_fast FROM __schema__.queues AS q WHERE q.name = v_queue;
    IF NOT FOUND THEN
        INSERT INTO __schema__.queues (name) VALUES (v_queue) ON CONFLICT (name) DO NOTHING;
        SELECT q.enqueue_shards, q.fast_inserts INTO v_shards, v_fast FROM __schema__.queues AS q WHERE q.name = v_queue;
    END IF;
    IF v_queue <> p_queue THEN  -- rerouted: the shard is the new queue's
        v_shard := CASE WHEN p_ordering_key IS NOT NULL
                        THEN __schema__.shard_for_ordering_key(p_ordering_key, v_shards)
                        ELSE p_shard % v_shards END;
    ELSIF v_shards IS DISTINCT FROM p_expected_shards THEN
        RETURN;
    END IF;

    IF p_run_at IS NOT NULL AND p_run_at > v_now THEN
        -- scheduled jobs get their lane number when they become due
        RETURN QUERY
        INSERT INTO __schema__.jobs (
            queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
            kind, args, tags, metadata, ordering_key, concurrency_key)
        VALUES (
            v_queue, p_priority, p_max_attempts, 'scheduled', v_shard, NULL, p_run_at, v_now,
            p_kind, p_args, p_tags, p_metadata, p_ordering_key, p_concurrency_key)
        RETURNING *;
        RETURN;
    END IF;

    -- The lane's head, created on first use (the only time a single insert
    -- takes a head lock), then the emptiness test for the wake-up.
    SELECT e.next_seq INTO v_next FROM __schema__.enqueue_heads AS e
    WHERE e.queue = v_queue AND e.priority = p_priority AND e.enqueue_shard = v_shard;
    IF NOT FOUND THEN
        SELECT b.next_seq INTO v_next
        FROM __schema__.bump_enqueue_heads(ARRAY[v_queue], ARRAY[p_priority], ARRAY[v_shard], ARRAY[0]) AS b;
    END IF;
    v_empty := v_next - 1 - coalesce((
        SELECT c.claim_seq + c.holes FROM __schema__.claim_heads AS c
        WHERE c.queue = v_queue AND c.priority = p_priority AND c.enqueue_shard = v_shard
    ), 0) <= 0
    AND NOT EXISTS (
        SELECT 1 FROM __schema__.lane_pending AS p
        WHERE p.queue = v_queue AND p.priority = p_priority AND p.enqueue_shard = v_shard);

    WITH job AS (
        INSERT INTO __schema__.jobs (
            queue, priority, max_attempts, state, enqueue_shard, lane_seq, run_at, created_at,
            kind, args, tags, metadata, ordering_key, concurrency_key)
        VALUES (
            v_queue, p_priority, p_max_attempts, 'available', v_shard, NULL, coalesce(p_run_at, v_now), v_now,
            p_kind, p_args, p_tags, p_metadata, p_ordering_key, p_concurrency_key)
        RETURNING *
    ), pending AS (
        INSERT INTO __schema__.lane_pending (queue, priority, enqueue_shard, pending_id, job_id)
        SELECT job.queue, job.priority, job.enqueue_shard, nextval('__schema__.lane_pending_ids'), job.id FROM job
    )
    SELECT * INTO v_job FROM job;

    IF v_empty THEN
        PERFORM pg_notify(p_channel, v_queue);
    END IF;
    IF p_mark_fast AND NOT v_fast AND v_queue = p_queue THEN  -- the next single insert may take the fast statement
        PERFORM __schema__.mark_fast_inserts(v_queue);
    END IF;
    RETURN NEXT v_job;
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
    v_q      text[];
    v_p      smallint[];
    v_s      smallint[];
    v_seq    bigint[];
    v_id     bigint[];
BEGIN
    -- Routed with the current width of a registered logical queue, under its
    -- key shared (16_repartition.sql): a late job takes a seq at the tail of
    -- the lane the width gives it.
    PERFORM __schema__.reroute_jobs(ARRAY(
        SELECT id FROM __schema__.jobs WHERE id = ANY (p_ids) AND state IN ('scheduled', 'retryable')));
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
        SELECT b.*
        FROM (SELECT array_agg(queue) AS q, array_agg(priority) AS p, array_agg(enqueue_shard) AS s,
                     array_agg(n::integer) AS n
              FROM lanes) AS a
        CROSS JOIN LATERAL __schema__.bump_enqueue_heads(a.q, a.p, a.s, a.n) AS b
    ), numbered AS (
        SELECT m.id, m.queue, m.priority, m.enqueue_shard,
               b.next_seq - l.n - 1
                 + row_number() OVER (PARTITION BY m.queue, m.priority, m.enqueue_shard
                                      ORDER BY m.run_at, m.id) AS seq
        FROM moving AS m
        JOIN lanes AS l USING (queue, priority, enqueue_shard)
        JOIN bumped AS b USING (queue, priority, enqueue_shard)
    ), moved AS (
        UPDATE __schema__.jobs AS j
        SET state = 'available', lane_seq = numbered.seq, heartbeat_at = NULL, deadline_at = NULL
        FROM numbered
        WHERE j.id = numbered.id
        RETURNING numbered.*
    )
    SELECT array_agg(queue), array_agg(priority), array_agg(enqueue_shard), array_agg(seq), array_agg(id)
    INTO v_q, v_p, v_s, v_seq, v_id
    FROM moved;
    v_count := coalesce(cardinality(v_id), 0);
    PERFORM __schema__.insert_lane_segments(v_q, v_p, v_s, v_seq, v_id);

    PERFORM pg_notify(p_channel, q) FROM unnest(v_queues) AS q;
    RETURN v_count;
END
$$;

CREATE OR REPLACE FUNCTION __schema__.promote_due(p_now timestamptz, p_limit integer, p_channel text)
RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
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
