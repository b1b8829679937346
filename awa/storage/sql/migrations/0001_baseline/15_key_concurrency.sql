-- Per-key concurrency: at most max_in_flight running jobs per (policy, key),
-- exact across processes and partitions (ADR 0020).
--
-- A policy belongs to a logical queue (its partitions q, q__p1, ... share it).
-- A job's key under the policy is its concurrency_key, else its ordering_key
-- when the policy says from_ordering_key, else none (not governed).
--
-- The authority is the job rows (ADR 0030): a running job whose granted_key
-- is set holds a grant of that key. The claim sets it in the statement that
-- marks the job running, and whatever ends the attempt (complete, retry,
-- snooze, fail, cancel, rescue, delete) ends the grant in that same
-- statement: nothing is written to release it. Check-and-take is serialised per key by a
-- transaction-scoped advisory lock taken BEFORE the statement that counts
-- (READ COMMITTED: a later statement sees every grant committed before the
-- lock was granted). Policy changes are serialised against claims by one
-- catalog lock: claims hold it shared, limit changes exclusive.

CREATE TABLE __schema__.key_policies (
    name              text        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    -- authoritative: no key ever has more grants than this
    max_in_flight     integer     NOT NULL CHECK (max_in_flight >= 1),
    -- a lower limit waiting for the keys above it to drain; claims already
    -- admit under it (least of the two)
    pending_max       integer     CHECK (pending_max >= 1 AND pending_max < max_in_flight),
    from_ordering_key boolean     NOT NULL DEFAULT false,
    -- lane numbers past a lane's claim cursor a claim examines (the bound on
    -- how far a blocked key at the head can hold back other keys of its lane)
    look_ahead        integer     NOT NULL DEFAULT 256 CHECK (look_ahead BETWEEN 1 AND 100000),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The logical queue of a physical queue: partition i > 0 is NAME__p{i}.
CREATE OR REPLACE FUNCTION __schema__.logical_queue(p_queue text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(p_queue, '__p[1-9][0-9]*$', '')
$$;

-- Concurrency keys of a batch just copied in (same transaction, so no claim
-- sees the rows without them): one UPDATE, rows in id order. A function only
-- to carry the planner setting of the hot paths (ADR 0039).
CREATE OR REPLACE FUNCTION __schema__.set_concurrency_keys(p_ids bigint[], p_keys bytea[])
RETURNS void
LANGUAGE sql
SET enable_seqscan = off  -- ADR 0039
AS $$
    UPDATE __schema__.jobs AS j
    SET concurrency_key = u.key
    FROM (SELECT * FROM unnest(p_ids, p_keys) AS u(id, key) ORDER BY u.id) AS u
    WHERE j.id = u.id
$$;

-- The grants: running attempts with a granted key, found by key (key_admit
-- probes it once per candidate; the policy is checked on the few rows a key
-- has). The key alone, not (policy, key): an expression column would run the
-- logical_queue regexp on every claimed governed row, 4-8 us a job (ADR 0036).
CREATE INDEX jobs_granted_key ON __schema__.jobs (granted_key)
    WHERE state = 'running' AND granted_key IS NOT NULL;

-- Every open grant, with its policy (the job's logical queue). Written once
-- here; the planner inlines it, so a filter on key (and policy) is a lookup
-- in jobs_granted_key. (A function, not a view: a simple view would accept a
-- DELETE, and delete running jobs.)
CREATE OR REPLACE FUNCTION __schema__.key_grants()
RETURNS TABLE (job_id bigint, run_lease bigint, policy text, key bytea)
LANGUAGE sql STABLE AS $$
    SELECT j.id, j.run_lease, __schema__.logical_queue(j.queue), j.granted_key
    FROM __schema__.jobs AS j
    WHERE j.state = 'running' AND j.granted_key IS NOT NULL
$$;

-- The most grants any key of a policy holds (0: none). Written once here,
-- for setting a policy, settling a pending limit and looking whether one is
-- ready.
CREATE OR REPLACE FUNCTION __schema__.key_most_grants(p_policy text)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(n), 0)
    FROM (SELECT count(*) AS n FROM __schema__.key_grants() AS g WHERE g.policy = p_policy GROUP BY g.key) AS c
$$;

-- A job's key under a policy: its concurrency_key, else its ordering key when
-- the policy says from_ordering_key (NULL: the job is not governed). Written
-- once here; a plain SQL expression, so the planner inlines it.
CREATE OR REPLACE FUNCTION __schema__.key_of(p_concurrency_key bytea, p_ordering_key bytea,
                                             p_from_ordering_key boolean)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_concurrency_key, CASE WHEN p_from_ordering_key THEN p_ordering_key END)
$$;

-- The catalog lock: shared by every claim call, exclusive for policy changes.
-- Its advisory lock key is (key_catalog_lock_id(), 20); a plain SQL
-- expression, so a caller's call of it costs nothing.
CREATE OR REPLACE FUNCTION __schema__.key_catalog_lock_id()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtext('__schema__.key_policies')
$$;

CREATE OR REPLACE FUNCTION __schema__.key_catalog_lock(p_exclusive boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(__schema__.key_catalog_lock_id(), 20);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(__schema__.key_catalog_lock_id(), 20);
    END IF;
END
$$;

-- Try (never wait) to serialise on one key for the rest of the transaction.
-- A hash collision only makes two keys take turns; grants count full keys.
-- (hashtextextended: a 64-bit hash, stable across servers; md5 and a hex
-- round trip cost four times as much per key.)
CREATE OR REPLACE FUNCTION __schema__.key_try_lock(p_policy text, p_key bytea)
RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_try_advisory_xact_lock(
        hashtextextended('__schema__' || E'\n' || p_policy || E'\n' || encode(p_key, 'hex'), 20))
$$;

-- How far claims have examined a governed lane past its cursor (ADR 0025):
-- every available job numbered claim_seq + 1 .. key_frontier is parked
-- (below), the other numbers there were taken or are holes; NULL or at most
-- claim_seq: nothing examined past the cursor, and nothing parked. In the
-- claim head row, written only under its lock: the claim's locking read
-- returns it as last committed, without a statement of its own.
ALTER TABLE __schema__.claim_heads ADD COLUMN key_frontier bigint;

-- Parked jobs: available jobs of a governed lane that a claim examined and
-- left, because their key was at its limit, busy in another claim, or had
-- earlier jobs parked. Per (lane, key) in lane order; the first one is the
-- key's head, and only heads (with the next few of their key) are read
-- again, so a key's surplus never fills a claim's window. The job row stays
-- available and in its lane (the cursor stops before the first parked job),
-- so lane counts stay exact. A cancelled job's row goes with the cancel
-- (key_unpark_cancelled); a row whose job left otherwise is dropped when a
-- claim reaches it. Written only under the lane's claim head.
CREATE TABLE __schema__.key_parked (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    key           bytea    NOT NULL,
    lane_seq      bigint   NOT NULL,
    job_id        bigint   NOT NULL,
    head          boolean  NOT NULL,
    PRIMARY KEY (queue, priority, enqueue_shard, key, lane_seq)
);
CREATE INDEX key_parked_heads ON __schema__.key_parked (queue, priority, enqueue_shard, lane_seq) WHERE head;

-- The first parked job of each of p_keys in a lane, leaving out the numbers
-- in p_except (rows the calling statement deletes): lane_seq and key. A key
-- with no such job has no row. A plain SQL function, inlined.
CREATE OR REPLACE FUNCTION __schema__.key_first_parked(p_queue text, p_priority smallint, p_shard smallint,
                                                      p_keys bytea[], p_except bigint[])
RETURNS TABLE (key bytea, lane_seq bigint)
LANGUAGE sql STABLE AS $$
    SELECT b.key, m.seq FROM unnest(p_keys) AS b(key)
    CROSS JOIN LATERAL (
        SELECT q.lane_seq AS seq FROM __schema__.key_parked AS q
        WHERE q.queue = p_queue AND q.priority = p_priority AND q.enqueue_shard = p_shard AND q.key = b.key
          AND NOT (q.lane_seq = ANY (p_except))
        ORDER BY q.lane_seq
        LIMIT 1
    ) AS m
$$;

-- The first parked job of each of p_keys in a lane becomes its key's head
-- (after its head left). The caller holds the lane's claim head. The UPDATE
-- names whole primary keys (lane, key, lane_seq): a join here was planned
-- as a scan of the lane's parked rows with a lookup per row (44 ms a claim
-- with 10,000 rows of a hot key parked). A lane number is one job, so the
-- first parked number of each key is its row.
CREATE OR REPLACE FUNCTION __schema__.key_promote_heads(p_queue text, p_priority smallint, p_shard smallint,
                                                       p_keys bytea[])
RETURNS void
LANGUAGE sql AS $$
    UPDATE __schema__.key_parked AS p SET head = true
    WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
      AND p.key = ANY (p_keys) AND NOT p.head
      AND p.lane_seq = ANY (ARRAY(
        SELECT f.lane_seq FROM __schema__.key_first_parked(p_queue, p_priority, p_shard, p_keys, '{}') AS f))
$$;

-- An available job was cancelled (cancel_job, under its lane's claim head):
-- if it was parked, its row goes, and when it was its key's head the next
-- parked job of the key becomes the head. So claims do not meet it again;
-- a row this misses (the policy's from_ordering_key changed since the job
-- was parked) is dropped by the claim that reaches it.
CREATE OR REPLACE FUNCTION __schema__.key_unpark_cancelled(p_job __schema__.jobs)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_key  bytea;
    v_head boolean;
BEGIN
    SELECT __schema__.key_of(p_job.concurrency_key, p_job.ordering_key, p.from_ordering_key) INTO v_key
    FROM __schema__.key_policies AS p WHERE p.name = __schema__.logical_queue(p_job.queue);
    IF v_key IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM __schema__.key_parked AS k
    WHERE k.queue = p_job.queue AND k.priority = p_job.priority AND k.enqueue_shard = p_job.enqueue_shard
      AND k.key = v_key AND k.lane_seq = p_job.lane_seq AND k.job_id = p_job.id
    RETURNING k.head INTO v_head;
    IF v_head THEN
        PERFORM __schema__.key_promote_heads(p_job.queue, p_job.priority, p_job.enqueue_shard, ARRAY[v_key]);
    END IF;
END
$$;

-- Admit candidates (in lane order: p_seqs ascending) under a policy: a job
-- is admitted when it has no key, or its key is in p_locked and has room:
-- the key's grants plus its earlier candidates are below p_cap. p_locked:
-- the candidates' keys whose lock (key_try_lock) this transaction took in an
-- EARLIER statement than the one calling this, so that this count's snapshot
-- sees every grant committed before the locks were granted; a key not in it
-- (busy in another claim, or behind parked jobs) is not admitted. The grants
-- are the committed ones and p_mine, the keys this claim took in earlier
-- calls (its jobs are marked running, and so hold their grants, when the
-- claim ends). Takes the first p_limit admitted; returns their ids, numbers
-- and keys (NULL: no key), and the number of the first admitted job left for
-- want of room in the claim (NULL when none). One row. A plain SQL function,
-- so the planner inlines it into the calling statement. No window function:
-- a candidate's earlier ones of its key are counted in the arrays, and the
-- scan stops at the first admitted job past the room (LIMIT over the
-- ordinality, which PostgreSQL 16+ knows is sorted), so the candidates after
-- it cost no grant probe (ADR 0037).
CREATE OR REPLACE FUNCTION __schema__.key_admit(
    p_policy text,
    p_cap    integer,
    p_limit  integer,
    p_ids    bigint[],
    p_seqs   bigint[],
    p_keys   bytea[],
    p_locked bytea[],
    p_mine   bytea[]
)
RETURNS TABLE (taken_ids bigint[], taken_seqs bigint[], taken_keys bytea[], stop_seq bigint)
LANGUAGE sql STABLE AS $$
    WITH admitted AS (
        -- A locked key's grants: one index probe per candidate, in a
        -- subquery. (Counted for all keys at once, with = ANY or a join, the
        -- generic plan made from statistics of a quiet moment scanned every
        -- running job of the schema, a regexp each, on every admission.)
        SELECT c.id, c.seq, c.k, c.ord
        FROM unnest(p_ids, p_seqs, p_keys) WITH ORDINALITY AS c(id, seq, k, ord)
        WHERE c.k IS NULL
           OR (c.k = ANY (p_locked)
               AND (SELECT count(*) FROM __schema__.key_grants() AS g WHERE g.policy = p_policy AND g.key = c.k)
                   + cardinality(array_positions(p_mine, c.k))
                   + cardinality(array_positions(p_keys[1:c.ord - 1], c.k)) < p_cap)
        ORDER BY c.ord
        LIMIT greatest(p_limit, 0) + 1
    )
    SELECT coalesce((array_agg(t.id ORDER BY t.ord))[1:p_limit], '{}'),
           coalesce((array_agg(t.seq ORDER BY t.ord))[1:p_limit], '{}'),
           coalesce((array_agg(t.k ORDER BY t.ord))[1:p_limit], '{}'),
           (array_agg(t.seq ORDER BY t.ord))[p_limit + 1]
    FROM admitted AS t
$$;

-- Claim from one lane of a governed queue; the caller holds the lane's claim
-- head and has p_cursor = its claim_seq. First the parked heads, in lane
-- order (at most W = greatest(look_ahead, p_limit) of them), each with the
-- next jobs of its key up to the limit; then, unless W heads were read, the
-- numbers past the frontier, at most W, read a few at a time until p_limit
-- are taken. A job left there for its key is parked; the frontier stops
-- before the first one left only for want of room in the claim. The cursor
-- stops before the first parked job; a job taken behind it leaves its number
-- as a hole, like a cancelled job. Returns the ids taken, in the order
-- taken, with their keys (NULL: no key); p_mine: the keys the claim took in
-- lanes before this one. The caller marks the rows running with their keys,
-- which makes them grants, and moves the lane's cursor in that same
-- statement (claim_jobs_limited): to new_cursor (NULL: nothing to move;
-- taken_behind of the jobs taken are at or before it), with lane_frontier
-- as the claim head's key_frontier (NULL unless past the new cursor).
CREATE OR REPLACE FUNCTION __schema__.claim_keyed_lane(
    p_queue    text,
    p_priority smallint,
    p_shard    smallint,
    p_policy   text,
    p_cap      integer,   -- the policy's limit now (least of max_in_flight and pending_max)
    p_look     integer,   -- and its look_ahead, read under the catalog lock
    p_from_ok  boolean,   -- and its from_ordering_key
    p_next     bigint,    -- the lane's next_seq, read before any job of it
    p_fence    bigint,    -- the claim head as locked: fence_seq
    p_frontier bigint,    -- key_frontier
    p_cursor   bigint,    -- claim_seq
    p_limit    integer,
    p_mine     bytea[],
    OUT taken_ids    bigint[],
    OUT taken_keys   bytea[],
    OUT new_cursor   bigint,
    OUT taken_behind integer,
    OUT lane_frontier bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    v_cap        integer;
    v_window     bigint;
    v_from_ok    boolean;
    v_left       integer := p_limit;
    v_frontier   bigint;
    v_had_parked boolean;
    v_parked     boolean := false;
    v_next       bigint;
    v_end        bigint;
    v_hi         bigint;
    v_heads      integer;
    v_behind     bytea[];
    v_ids        bigint[];
    v_seqs       bigint[];
    v_keys       bytea[];
    v_locked     bytea[];
    v_stale      bigint[];
    v_gone       bigint[];
    v_first      bigint;
    v_seq        bigint;
    v_got        record;
    v_taken      bigint[] := '{}';
    v_taken_seqs bigint[] := '{}';
    v_taken_keys bytea[] := '{}';
BEGIN
    taken_ids := '{}';
    taken_keys := '{}';
    -- The policy and the lane's state come from the caller: no statement
    -- here before the window (each statement costs its executor start-up and
    -- end whatever it reads), so the common case (nothing parked) runs two,
    -- the window and key_admit. next_seq was read before any job, so every
    -- job numbered below it is seen; a fenced lane hands out numbers up to its
    -- fence only (16_repartition.sql). Parked jobs lie past the cursor and up
    -- to the frontier, so with the frontier at the cursor none is parked.
    IF p_limit <= 0 OR p_cap IS NULL THEN
        RETURN;
    END IF;
    v_cap := p_cap;
    v_window := greatest(p_look, p_limit);
    v_from_ok := p_from_ok;
    v_next := least(p_next, p_fence + 1);
    v_frontier := greatest(coalesce(p_frontier, p_cursor), p_cursor);
    v_had_parked := v_frontier > p_cursor;

    -- 1. Parked heads and the next parked jobs of their keys, still there.
    v_heads := 0;
    v_behind := '{}';
    IF v_had_parked THEN
    WITH h AS (
        SELECT p.key FROM __schema__.key_parked AS p
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head
        ORDER BY p.lane_seq
        LIMIT v_window
    ), r AS (
        SELECT h.key, x.lane_seq, x.job_id,
               j.id IS NOT NULL AND x.lane_seq > p_cursor AS live,
               __schema__.key_of(j.concurrency_key, j.ordering_key, v_from_ok) AS k
        FROM h
        CROSS JOIN LATERAL (
            SELECT p.lane_seq, p.job_id FROM __schema__.key_parked AS p
            WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.key = h.key
            ORDER BY p.lane_seq
            LIMIT v_cap
        ) AS x
        LEFT JOIN __schema__.jobs AS j
               ON j.id = x.job_id AND j.lane_seq = x.lane_seq AND j.state = 'available'
              AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
    )
    SELECT (SELECT count(*) FROM h), ARRAY(SELECT h.key FROM h),
           array_agg(r.job_id ORDER BY r.lane_seq) FILTER (WHERE r.live),
           array_agg(r.lane_seq ORDER BY r.lane_seq) FILTER (WHERE r.live),
           array_agg(r.k ORDER BY r.lane_seq) FILTER (WHERE r.live),
           array_agg(r.lane_seq) FILTER (WHERE NOT r.live),
           -- the per-key locks, in this statement: key_admit counts in the next
           coalesce(array_agg(r.k) FILTER (WHERE r.live AND r.k IS NOT NULL
                                           AND __schema__.key_try_lock(p_policy, r.k)), '{}')
    INTO v_heads, v_behind, v_ids, v_seqs, v_keys, v_stale, v_locked
    FROM r;
    IF v_ids IS NOT NULL THEN
        SELECT * INTO v_got FROM __schema__.key_admit(p_policy, v_cap, v_left, v_ids, v_seqs, v_keys, v_locked, p_mine);
        v_taken := v_got.taken_ids;
        v_taken_seqs := v_got.taken_seqs;
        v_taken_keys := v_got.taken_keys;
        v_left := v_left - cardinality(v_taken);
    END IF;
    IF cardinality(v_taken_seqs) > 0 OR v_stale IS NOT NULL THEN
        -- In one statement: unpark what was taken or is gone; the next of
        -- each such key becomes its head; and only a key that still has
        -- parked jobs holds its later ones back (a key whose parked jobs were
        -- all taken or gone, cancelled, is free). The DELETE and the UPDATE
        -- name whole primary keys (lane, key, lane_seq), as
        -- key_promote_heads does, and for the same reason.
        v_gone := v_taken_seqs || coalesce(v_stale, '{}');
        WITH firsts AS (
            SELECT f.key, f.lane_seq FROM __schema__.key_first_parked(p_queue, p_priority, p_shard, v_behind, v_gone) AS f
        ), unparked AS (
            DELETE FROM __schema__.key_parked AS p
            WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
              AND p.key = ANY (v_behind) AND p.lane_seq = ANY (v_gone)
        ), promoted AS (
            UPDATE __schema__.key_parked AS p SET head = true
            WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
              AND p.key = ANY (v_behind) AND NOT p.head
              AND p.lane_seq = ANY (ARRAY(SELECT f.lane_seq FROM firsts AS f))
        )
        SELECT ARRAY(SELECT f.key FROM firsts AS f) INTO v_behind;
    END IF;
    END IF;

    -- 2. New numbers past the frontier, unless the heads filled the window.
    -- Every key with parked jobs is in v_behind (fewer than W heads: all of
    -- them were read), so none of its later jobs overtakes them.
    v_end := least(v_frontier + v_window, v_next - 1);
    WHILE v_left > 0 AND v_heads < v_window AND v_frontier < v_end LOOP
        -- twice the room (at least 4): each candidate read costs its key's
        -- try-lock (ADR 0037)
        v_hi := least(v_frontier + greatest(2 * v_left, 4), v_end);
        -- The candidates, and the per-key locks of those not behind parked
        -- jobs, in this statement: key_admit counts in the next.
        SELECT array_agg(w.id ORDER BY w.seq), array_agg(w.seq ORDER BY w.seq), array_agg(w.k ORDER BY w.seq),
               coalesce(array_agg(w.k) FILTER (WHERE w.k IS NOT NULL AND NOT (w.k = ANY (v_behind))
                                               AND __schema__.key_try_lock(p_policy, w.k)), '{}')
        INTO v_ids, v_seqs, v_keys, v_locked
        FROM (
        SELECT j.id, j.lane_seq AS seq, __schema__.key_of(j.concurrency_key, j.ordering_key, v_from_ok) AS k
        FROM __schema__.lane_segments AS g
        JOIN __schema__.jobs AS j
          ON j.id BETWEEN g.first_id + (greatest(g.first_seq, v_frontier + 1) - g.first_seq)
                      AND g.first_id + (least(g.last_seq, v_hi) - g.first_seq)
         AND j.lane_seq = g.first_seq + (j.id - g.first_id)
         AND j.state = 'available'
         AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
        WHERE g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
          AND g.last_seq > v_frontier AND g.first_seq <= v_hi
        ) AS w;
        IF v_ids IS NULL THEN
            v_frontier := v_hi;  -- holes only
            CONTINUE;
        END IF;
        SELECT * INTO v_got
        FROM __schema__.key_admit(p_policy, v_cap, v_left, v_ids, v_seqs, v_keys, v_locked, p_mine || v_taken_keys);
        v_taken := v_taken || v_got.taken_ids;
        v_taken_seqs := v_taken_seqs || v_got.taken_seqs;
        v_taken_keys := v_taken_keys || v_got.taken_keys;
        v_left := v_left - cardinality(v_got.taken_ids);
        v_hi := coalesce(v_got.stop_seq - 1, v_hi);
        -- Park what was left for its key, up to the new frontier: the candidates
        -- before stop_seq that were not taken (often none: then no statement).
        IF coalesce(array_position(v_seqs, v_got.stop_seq) - 1, cardinality(v_seqs))
           > cardinality(v_got.taken_seqs) THEN
            INSERT INTO __schema__.key_parked AS p (queue, priority, enqueue_shard, key, lane_seq, job_id, head)
            SELECT p_queue, p_priority, p_shard, u.k, u.seq, u.id,
                   row_number() OVER (PARTITION BY u.k ORDER BY u.seq) = 1
                   AND NOT EXISTS (SELECT 1 FROM __schema__.key_parked AS q
                                   WHERE q.queue = p_queue AND q.priority = p_priority
                                     AND q.enqueue_shard = p_shard AND q.key = u.k)
            FROM unnest(v_ids, v_seqs, v_keys) AS u(id, seq, k)
            WHERE u.seq <= v_hi AND NOT (u.seq = ANY (v_got.taken_seqs)) AND u.k IS NOT NULL;
            v_behind := v_behind || ARRAY(
                SELECT DISTINCT u.k FROM unnest(v_seqs, v_keys) AS u(seq, k)
                WHERE u.seq <= v_hi AND NOT (u.seq = ANY (v_got.taken_seqs)) AND u.k IS NOT NULL);
            v_parked := true;
        END IF;
        v_frontier := v_hi;
    END LOOP;

    -- The cursor stops before the first parked job (a head: the first of its
    -- key), and at the frontier. The caller writes the move (see above).
    IF v_had_parked OR v_parked THEN
        SELECT min(p.lane_seq) INTO v_first FROM __schema__.key_parked AS p
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head;
    END IF;
    new_cursor := greatest(coalesce(least(v_first - 1, v_frontier), v_frontier), p_cursor);
    taken_behind := 0;
    FOREACH v_seq IN ARRAY v_taken_seqs LOOP
        IF v_seq <= new_cursor THEN
            taken_behind := taken_behind + 1;
        END IF;
    END LOOP;
    lane_frontier := CASE WHEN v_frontier > new_cursor THEN v_frontier END;
    taken_ids := v_taken;
    taken_keys := v_taken_keys;
END
$$;

-- Promote a pending lower limit once no key of the policy holds more grants
-- than it. The caller holds the exclusive catalog lock, so no claim of any
-- policy is between its count and its commit.
CREATE OR REPLACE FUNCTION __schema__.key_settle_locked(p_policy text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_pending integer;
BEGIN
    SELECT pending_max INTO v_pending FROM __schema__.key_policies WHERE name = p_policy;
    IF v_pending IS NULL THEN
        RETURN;
    END IF;
    IF __schema__.key_most_grants(p_policy) <= v_pending THEN
        UPDATE __schema__.key_policies
        SET max_in_flight = v_pending, pending_max = NULL, updated_at = now()
        WHERE name = p_policy;
    END IF;
END
$$;

-- Create a policy, or change an existing one (p_create false: refuse an
-- unknown one by returning no row). A higher limit applies at once; a lower
-- one becomes pending and applies when every key is within it (at once when
-- they already are). Creating a policy grants the attempts already running
-- under it, so the limit counts them, and starts at least as high as the
-- most any key has.
CREATE OR REPLACE FUNCTION __schema__.set_key_policy(
    p_name              text,
    p_max_in_flight     integer,
    p_from_ordering_key boolean,
    p_look_ahead        integer,
    p_create            boolean
)
RETURNS SETOF __schema__.key_policies
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_old  __schema__.key_policies;
    v_most bigint;
BEGIN
    PERFORM __schema__.key_catalog_lock(true);
    SELECT * INTO v_old FROM __schema__.key_policies WHERE name = p_name;
    IF NOT FOUND THEN
        IF NOT p_create THEN
            RETURN;
        END IF;
        INSERT INTO __schema__.key_policies (name, max_in_flight, from_ordering_key, look_ahead)
        VALUES (p_name, p_max_in_flight, coalesce(p_from_ordering_key, false), coalesce(p_look_ahead, 256))
        RETURNING * INTO v_old;
        -- Marked under their row locks: an attempt ending meanwhile either
        -- ended before, or is waited for and then no longer running.
        UPDATE __schema__.jobs AS j
        SET granted_key = __schema__.key_of(j.concurrency_key, j.ordering_key, v_old.from_ordering_key)
        WHERE j.state = 'running' AND __schema__.logical_queue(j.queue) = p_name
          AND j.granted_key IS DISTINCT FROM
              __schema__.key_of(j.concurrency_key, j.ordering_key, v_old.from_ordering_key);
        v_most := __schema__.key_most_grants(p_name);
        IF v_most > p_max_in_flight THEN
            UPDATE __schema__.key_policies
            SET max_in_flight = v_most, pending_max = p_max_in_flight
            WHERE name = p_name;
        END IF;
    ELSE
        UPDATE __schema__.key_policies
        SET max_in_flight = greatest(max_in_flight, coalesce(p_max_in_flight, max_in_flight)),
            pending_max = CASE WHEN p_max_in_flight IS NULL THEN pending_max
                               WHEN p_max_in_flight < max_in_flight THEN p_max_in_flight END,
            from_ordering_key = coalesce(p_from_ordering_key, from_ordering_key),
            look_ahead = coalesce(p_look_ahead, look_ahead),
            updated_at = now()
        WHERE name = p_name;
    END IF;
    PERFORM __schema__.key_settle_locked(p_name);
    RETURN QUERY SELECT * FROM __schema__.key_policies WHERE name = p_name;
END
$$;

-- Promote every pending lower limit whose keys are all within it, when the
-- catalog lock is free (never waited for; else the next release or change
-- does). After the end of governed attempts, in a later statement than the
-- one that ended them, so that its count no longer sees their grants. The
-- exclusive lock, held to commit, holds up every claim: it is tried only
-- when a pending limit looks ready without it (key_settle_locked counts
-- again under it), not on every release while a limit waits.
CREATE OR REPLACE FUNCTION __schema__.key_settle_pending()
RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_ready text[];
BEGIN
    SELECT array_agg(p.name) INTO v_ready FROM __schema__.key_policies AS p
    WHERE p.pending_max IS NOT NULL AND __schema__.key_most_grants(p.name) <= p.pending_max;
    IF v_ready IS NOT NULL AND pg_try_advisory_xact_lock(__schema__.key_catalog_lock_id(), 20) THEN
        PERFORM __schema__.key_settle_locked(n) FROM unnest(v_ready) AS n;
    END IF;
END
$$;

-- End of a governed attempt, other than its completion: the grant ended with
-- it, in the statement that moved the row out of 'running'. Here only what
-- follows from that: wake the claimers (a gated job of this key may now run),
-- and settle a pending lower limit. Completions do the same in lease_batch,
-- once per statement (06_lifecycle.sql): as a row trigger this cost 6-10 us a
-- completed job (ADR 0036).
CREATE OR REPLACE FUNCTION __schema__.release_key_grant()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(__schema__.jobs_channel(), OLD.queue);
    PERFORM __schema__.key_settle_pending();
    RETURN NULL;
END
$$;

-- (Completions are left out: lease_batch is every statement that completes.)
CREATE TRIGGER jobs_release_key_grant
    AFTER UPDATE OF state ON __schema__.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'running' AND NEW.state NOT IN ('running', 'completed') AND OLD.granted_key IS NOT NULL)
    EXECUTE FUNCTION __schema__.release_key_grant();

CREATE TRIGGER jobs_release_key_grant_on_delete
    AFTER DELETE ON __schema__.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'running' AND OLD.granted_key IS NOT NULL)
    EXECUTE FUNCTION __schema__.release_key_grant();
