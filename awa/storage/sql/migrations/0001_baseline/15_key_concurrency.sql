-- Per-key concurrency: at most max_in_flight running jobs per (policy, key),
-- exact across processes and partitions (ADR 0020).
--
-- A policy belongs to a logical queue (its partitions q, q__p1, ... share it).
-- A job's key under the policy is its concurrency_key, else its ordering_key
-- when the policy says from_ordering_key, else none (not governed).
--
-- The database authority is key_grants: one row per governed running
-- attempt, inserted by the claim and deleted by a trigger in the same
-- transaction as whatever ends the attempt (complete, retry, snooze, fail,
-- cancel, rescue, delete). Check-and-take is serialised per key by a
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

CREATE TABLE __schema__.key_grants (
    job_id     bigint      PRIMARY KEY,
    run_lease  bigint      NOT NULL,
    policy     text        NOT NULL,
    key        bytea       NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX key_grants_policy_key ON __schema__.key_grants (policy, key);

-- The logical queue of a physical queue: partition i > 0 is NAME__p{i}.
CREATE OR REPLACE FUNCTION __schema__.logical_queue(p_queue text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(p_queue, '__p[1-9][0-9]*$', '')
$$;

-- The catalog lock: shared by every claim call, exclusive for policy changes.
CREATE OR REPLACE FUNCTION __schema__.key_catalog_lock(p_exclusive boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(hashtext('__schema__.key_policies'), 20);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashtext('__schema__.key_policies'), 20);
    END IF;
END
$$;

-- One claim call's policies, by position in p_queues (NULL: no policy).
-- Takes the shared catalog lock first, so the values read stay authoritative
-- until the claim commits.
CREATE OR REPLACE FUNCTION __schema__.key_claim_policies(p_queues text[])
RETURNS text[]
LANGUAGE plpgsql
-- (a custom plan per call, chosen for the exact array length, was planned
-- again on most calls: about a third of this function's time)
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM __schema__.key_catalog_lock(false);
    IF NOT EXISTS (SELECT 1 FROM __schema__.key_policies) THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(
        SELECT p.name
        FROM unnest(p_queues) WITH ORDINALITY AS u(q, ord)
        LEFT JOIN __schema__.key_policies AS p ON p.name = __schema__.logical_queue(u.q)
        ORDER BY u.ord);
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
-- every available job numbered claim_seq + 1 .. frontier is parked (below),
-- the other numbers there were taken or are holes. Written only under the
-- lane's claim head.
CREATE TABLE __schema__.key_lane_state (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    frontier      bigint   NOT NULL,
    PRIMARY KEY (queue, priority, enqueue_shard)
);

-- Parked jobs: available jobs of a governed lane that a claim examined and
-- left, because their key was at its limit, busy in another claim, or had
-- earlier jobs parked. Per (lane, key) in lane order; the first one is the
-- key's head, and only heads (with the next few of their key) are read
-- again, so a key's surplus never fills a claim's window. The job row stays
-- available and in its lane (the cursor stops before the first parked job),
-- so lane counts stay exact. A row whose job left (cancelled, deleted) is
-- dropped when a claim reaches it. Written only under the lane's claim head.
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

-- Claim from one lane of a governed queue; the caller holds the lane's claim
-- head and has p_cursor = its claim_seq. First the parked heads, in lane
-- order (at most W = greatest(look_ahead, p_limit) of them), each with the
-- next jobs of its key up to the limit; then, unless W heads were read, the
-- numbers past the frontier, at most W, read a few at a time until p_limit
-- are taken. A job left there for its key is parked; the frontier stops
-- before the first one left only for want of room in the claim. The cursor
-- stops before the first parked job; a job taken behind it leaves its number
-- as a hole, like a cancelled job. Returns the ids taken, in the order
-- taken; grants are written here, the rows are marked running by the caller.
--
-- Each batch of candidates (the heads, then each window) is admitted by the
-- same two statements: a try-lock (never waits) on each distinct key not in
-- v_behind (keys with jobs parked before these), then, in a later statement
-- (READ COMMITTED: its snapshot sees every grant committed before the locks
-- were granted), the admission: a job is admitted when it has no key, or its
-- key was locked here and has room: the key's grants (this transaction's
-- included) plus its earlier candidates are below the cap. The first v_left
-- admitted are taken and their grants written; v_stop is the number of the
-- first admitted job left for want of room in the claim (NULL when none).
-- (Written inline, one statement each, not as a function per batch: a
-- PL/pgSQL call per batch cost more than the two statements themselves.)
CREATE OR REPLACE FUNCTION __schema__.claim_keyed_lane(
    p_queue    text,
    p_priority smallint,
    p_shard    smallint,
    p_policy   text,
    p_cursor   bigint,
    p_limit    integer
)
RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_cap        integer;
    v_from_ok    boolean;
    v_window     bigint;
    v_left       integer := p_limit;
    v_frontier   bigint;
    v_next       bigint;
    v_end        bigint;
    v_hi         bigint;
    v_parked     boolean;       -- the lane may have parked jobs (it had a head, or this claim parked)
    v_at_heads   boolean;       -- the batch in hand is the parked heads
    v_first_window boolean;     -- the batch in hand is the first statement's window (keys locked)
    v_heads      integer := 0;
    v_head_keys  bytea[];
    v_behind     bytea[] := '{}';
    v_ids        bigint[];
    v_seqs       bigint[];
    v_keys       bytea[];
    v_leases     bigint[];      -- the candidates' run_lease (a grant is for the next one)
    v_stale      bigint[];
    v_locked     bytea[];
    v_got_ids    bigint[];
    v_got_seqs   bigint[];
    v_stop       bigint;
    v_taken      bigint[] := '{}';
    v_taken_seqs bigint[] := '{}';
    v_first      bigint;
    v_new_cursor bigint;
BEGIN
    IF p_limit <= 0 THEN
        RETURN '{}';
    END IF;
    -- One statement, one snapshot (an enqueue writes its lane numbers and
    -- its jobs in one transaction: a snapshot that sees next_seq sees every
    -- job numbered below it): the policy, the lane's next number (a fenced
    -- lane hands out numbers up to its fence only, 16_repartition.sql), how
    -- far claims have examined it, whether it has parked jobs, and, when it
    -- has none, the first window past the frontier with its keys try-locked
    -- (the statement that counts their grants comes later).
    WITH lane AS (
        SELECT least(p.max_in_flight, coalesce(p.pending_max, p.max_in_flight)) AS cap,
               p.from_ordering_key AS from_ok, greatest(p.look_ahead, p_limit) AS win,
               least(e.next_seq, c.fence_seq + 1) AS nxt,
               greatest(coalesce(s.frontier, p_cursor), p_cursor) AS fr,
               EXISTS (SELECT 1 FROM __schema__.key_parked AS k
                       WHERE k.queue = p_queue AND k.priority = p_priority AND k.enqueue_shard = p_shard
                         AND k.head) AS parked
        FROM __schema__.key_policies AS p
        JOIN __schema__.enqueue_heads AS e
          ON e.queue = p_queue AND e.priority = p_priority AND e.enqueue_shard = p_shard
        JOIN __schema__.claim_heads AS c
          ON c.queue = p_queue AND c.priority = p_priority AND c.enqueue_shard = p_shard
        LEFT JOIN __schema__.key_lane_state AS s
          ON s.queue = p_queue AND s.priority = p_priority AND s.enqueue_shard = p_shard
        WHERE p.name = p_policy
    ), span AS (
        -- the window loop's bounds below, for its first window
        SELECT l.*, least(l.fr + l.win, l.nxt - 1) AS last,
               least(l.fr + greatest(2 * p_limit, 16), l.fr + l.win, l.nxt - 1) AS hi
        FROM lane AS l
    ), cand AS MATERIALIZED (
        SELECT j.id, j.lane_seq AS seq, j.run_lease AS lease,
               coalesce(j.concurrency_key, CASE WHEN x.from_ok THEN j.ordering_key END) AS k
        FROM span AS x
        JOIN __schema__.lane_segments AS g
          ON g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
         AND g.last_seq > x.fr AND g.first_seq <= x.hi
        JOIN __schema__.jobs AS j
          ON j.id BETWEEN g.first_id + (greatest(g.first_seq, x.fr + 1) - g.first_seq)
                      AND g.first_id + (least(g.last_seq, x.hi) - g.first_seq)
         AND j.lane_seq = g.first_seq + (j.id - g.first_id)
         AND j.state = 'available'
         AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
        WHERE NOT x.parked AND x.fr < x.last
    )
    SELECT x.cap, x.from_ok, x.win, x.nxt, x.fr, x.parked, x.last, x.hi, a.ids, a.seqs, a.keys, a.leases,
           ARRAY(SELECT d.k FROM (SELECT DISTINCT c.k FROM cand AS c WHERE c.k IS NOT NULL) AS d
                 WHERE __schema__.key_try_lock(p_policy, d.k)) AS first_locked
    INTO v_cap, v_from_ok, v_window, v_next, v_frontier, v_parked, v_end, v_hi,
         v_ids, v_seqs, v_keys, v_leases, v_locked
    FROM span AS x
    CROSS JOIN (SELECT array_agg(c.id ORDER BY c.seq) AS ids, array_agg(c.seq ORDER BY c.seq) AS seqs,
                       array_agg(c.k ORDER BY c.seq) AS keys, array_agg(c.lease ORDER BY c.seq) AS leases
                FROM cand AS c) AS a;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    v_first_window := NOT v_parked;
    IF v_parked THEN
        v_locked := NULL;  -- nothing read, nothing locked: the heads come first
    END IF;
    v_at_heads := v_parked;

    LOOP
        IF v_at_heads THEN
            -- 1. Parked heads and the next parked jobs of their keys, still there.
            WITH h AS (
                SELECT p.key FROM __schema__.key_parked AS p
                WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head
                ORDER BY p.lane_seq
                LIMIT v_window
            ), r AS (
                SELECT h.key, x.lane_seq, x.job_id, j.run_lease,
                       j.id IS NOT NULL AND x.lane_seq > p_cursor AS live,
                       coalesce(j.concurrency_key, CASE WHEN v_from_ok THEN j.ordering_key END) AS k
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
                   array_agg(r.run_lease ORDER BY r.lane_seq) FILTER (WHERE r.live),
                   array_agg(r.lane_seq) FILTER (WHERE NOT r.live)
            INTO v_heads, v_head_keys, v_ids, v_seqs, v_keys, v_leases, v_stale
            FROM r;
        ELSE
            -- 2. New numbers past the frontier, unless the heads filled the window.
            -- Every key with parked jobs is in v_behind (fewer than W heads: all of
            -- them were read), so none of its later jobs overtakes them.
            EXIT WHEN NOT coalesce(v_left > 0 AND v_heads < v_window AND v_frontier < v_end, false);
            IF v_first_window THEN
                v_first_window := false;
            ELSE
                v_locked := NULL;
                v_hi := least(v_frontier + greatest(2 * v_left, 16), v_end);
                SELECT array_agg(j.id ORDER BY j.lane_seq), array_agg(j.lane_seq ORDER BY j.lane_seq),
                       array_agg(coalesce(j.concurrency_key, CASE WHEN v_from_ok THEN j.ordering_key END)
                                 ORDER BY j.lane_seq),
                       array_agg(j.run_lease ORDER BY j.lane_seq)
                INTO v_ids, v_seqs, v_keys, v_leases
                FROM __schema__.lane_segments AS g
                JOIN __schema__.jobs AS j
                  ON j.id BETWEEN g.first_id + (greatest(g.first_seq, v_frontier + 1) - g.first_seq)
                              AND g.first_id + (least(g.last_seq, v_hi) - g.first_seq)
                 AND j.lane_seq = g.first_seq + (j.id - g.first_id)
                 AND j.state = 'available'
                 AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
                WHERE g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
                  AND g.last_seq > v_frontier AND g.first_seq <= v_hi;
            END IF;
            IF v_ids IS NULL THEN
                v_frontier := v_hi;  -- holes only
                CONTINUE;
            END IF;
        END IF;

        -- Admit the batch (see above). Serialise on each distinct key first,
        -- unless the first statement did (own statement: the count below must
        -- take its snapshot after the locks are granted).
        v_got_ids := '{}';
        v_got_seqs := '{}';
        v_stop := NULL;
        IF v_ids IS NOT NULL THEN
            IF v_locked IS NULL THEN
                v_locked := ARRAY(
                    SELECT k FROM (SELECT DISTINCT k FROM unnest(v_keys) AS u(k)
                                   WHERE k IS NOT NULL AND NOT (k = ANY (v_behind))) AS d
                    WHERE __schema__.key_try_lock(p_policy, d.k));
            END IF;
            WITH cand AS (
                SELECT u.id, u.seq, u.k, u.lease FROM unnest(v_ids, v_seqs, v_keys, v_leases) AS u(id, seq, k, lease)
            ), held AS (
                SELECT g.key AS k, count(*) AS n FROM __schema__.key_grants AS g
                WHERE g.policy = p_policy AND g.key = ANY (v_locked)
                GROUP BY g.key
            ), ranked AS (
                SELECT c.id, c.seq, c.k, c.lease,
                       CASE WHEN c.k IS NULL THEN true
                            WHEN NOT (c.k = ANY (v_locked)) THEN false
                            ELSE coalesce(h.n, 0) + row_number() OVER (PARTITION BY c.k ORDER BY c.seq) <= v_cap
                       END AS ok
                FROM cand AS c LEFT JOIN held AS h ON h.k = c.k
            ), numbered AS (
                SELECT r.*, row_number() OVER (ORDER BY r.seq) AS n FROM ranked AS r WHERE r.ok
            ), granted AS (
                INSERT INTO __schema__.key_grants (job_id, run_lease, policy, key)
                SELECT t.id, t.lease + 1, p_policy, t.k
                FROM numbered AS t
                WHERE t.n <= v_left AND t.k IS NOT NULL
            )
            SELECT coalesce(array_agg(t.id ORDER BY t.seq) FILTER (WHERE t.n <= v_left), '{}'),
                   coalesce(array_agg(t.seq ORDER BY t.seq) FILTER (WHERE t.n <= v_left), '{}'),
                   min(t.seq) FILTER (WHERE t.n > v_left)
            INTO v_got_ids, v_got_seqs, v_stop
            FROM numbered AS t;
            v_taken := v_taken || v_got_ids;
            v_taken_seqs := v_taken_seqs || v_got_seqs;
            v_left := v_left - cardinality(v_got_ids);
        END IF;
        v_locked := NULL;

        IF v_at_heads THEN
            v_at_heads := false;
            v_behind := v_head_keys;
            IF cardinality(v_got_seqs) > 0 OR v_stale IS NOT NULL THEN
                -- Unpark what was taken or is gone; the next of each such key becomes its head.
                -- Both statements name whole primary keys (lane, key, lane_seq): a
                -- join here was planned as a scan of the lane's parked rows with a
                -- lookup per row (44 ms a claim with 10,000 rows of a hot key parked).
                DELETE FROM __schema__.key_parked AS p
                WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
                  AND p.key = ANY (v_behind)
                  AND p.lane_seq = ANY (v_got_seqs || coalesce(v_stale, '{}'));
                -- (a lane number is one job: the first parked number of each key is its row)
                UPDATE __schema__.key_parked AS p SET head = true
                WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
                  AND p.key = ANY (v_behind) AND NOT p.head
                  AND p.lane_seq = ANY (ARRAY(
                    SELECT m.seq FROM unnest(v_behind) AS b(key)
                    CROSS JOIN LATERAL (
                    SELECT q.lane_seq AS seq FROM __schema__.key_parked AS q
                    WHERE q.queue = p_queue AND q.priority = p_priority AND q.enqueue_shard = p_shard AND q.key = b.key
                    ORDER BY q.lane_seq
                    LIMIT 1
                    ) AS m));
            END IF;
        ELSE
            v_hi := coalesce(v_stop - 1, v_hi);
            -- Park what was left for its key, up to the new frontier: the candidates
            -- before v_stop that were not taken (often none: then no statement).
            IF coalesce(array_position(v_seqs, v_stop) - 1, cardinality(v_seqs)) > cardinality(v_got_seqs) THEN
                INSERT INTO __schema__.key_parked AS p (queue, priority, enqueue_shard, key, lane_seq, job_id, head)
                SELECT p_queue, p_priority, p_shard, u.k, u.seq, u.id,
                       row_number() OVER (PARTITION BY u.k ORDER BY u.seq) = 1
                       AND NOT EXISTS (SELECT 1 FROM __schema__.key_parked AS q
                                       WHERE q.queue = p_queue AND q.priority = p_priority
                                         AND q.enqueue_shard = p_shard AND q.key = u.k)
                FROM unnest(v_ids, v_seqs, v_keys) AS u(id, seq, k)
                WHERE u.seq <= v_hi AND NOT (u.seq = ANY (v_got_seqs)) AND u.k IS NOT NULL;
                v_behind := v_behind || ARRAY(
                    SELECT DISTINCT u.k FROM unnest(v_seqs, v_keys) AS u(seq, k)
                    WHERE u.seq <= v_hi AND NOT (u.seq = ANY (v_got_seqs)) AND u.k IS NOT NULL);
                v_parked := true;
            END IF;
            v_frontier := v_hi;
        END IF;
    END LOOP;

    -- The cursor stops before the first parked job (a head: the first of its
    -- key). A lane with no head before this claim and nothing parked by it has none.
    IF v_parked THEN
        SELECT min(p.lane_seq) INTO v_first FROM __schema__.key_parked AS p
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head;
    END IF;
    v_new_cursor := greatest(coalesce(least(v_first - 1, v_frontier), v_frontier), p_cursor);

    -- The lane's cursor and hole count, its segments wholly behind the
    -- cursor, and its frontier: one statement (three tables, none read back).
    -- The frontier is written only while it is past the cursor (jobs parked
    -- between): a stored frontier at or behind the cursor reads as the cursor.
    WITH t AS (
        SELECT count(*) AS prefix FROM unnest(v_taken_seqs) AS u(seq) WHERE u.seq <= v_new_cursor
    ), head AS (
        UPDATE __schema__.claim_heads AS c
        SET claim_seq = v_new_cursor,
            holes = greatest(c.holes - ((v_new_cursor - p_cursor) - t.prefix), 0)
                    + (cardinality(v_taken) - t.prefix)
        FROM t
        WHERE c.queue = p_queue AND c.priority = p_priority AND c.enqueue_shard = p_shard
    ), segs AS (
        DELETE FROM __schema__.lane_segments AS g
        WHERE v_new_cursor > p_cursor
          AND g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
          AND g.last_seq <= v_new_cursor
    )
    INSERT INTO __schema__.key_lane_state AS s (queue, priority, enqueue_shard, frontier)
    SELECT p_queue, p_priority, p_shard, v_frontier
    WHERE v_frontier > v_new_cursor
    ON CONFLICT (queue, priority, enqueue_shard) DO UPDATE SET frontier = excluded.frontier
    WHERE s.frontier IS DISTINCT FROM excluded.frontier;
    RETURN v_taken;
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
    v_most    bigint;
BEGIN
    SELECT pending_max INTO v_pending FROM __schema__.key_policies WHERE name = p_policy;
    IF v_pending IS NULL THEN
        RETURN;
    END IF;
    SELECT coalesce(max(n), 0) INTO v_most
    FROM (SELECT count(*) AS n FROM __schema__.key_grants WHERE policy = p_policy GROUP BY key) AS g;
    IF v_most <= v_pending THEN
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
LANGUAGE plpgsql AS $$
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
        INSERT INTO __schema__.key_grants (job_id, run_lease, policy, key)
        SELECT j.id, j.run_lease, p_name, k.key
        FROM __schema__.jobs AS j
        CROSS JOIN LATERAL (SELECT coalesce(j.concurrency_key,
                                            CASE WHEN v_old.from_ordering_key THEN j.ordering_key END) AS key) AS k
        WHERE j.state = 'running' AND k.key IS NOT NULL
          AND __schema__.logical_queue(j.queue) = p_name
        ON CONFLICT (job_id) DO NOTHING;
        SELECT coalesce(max(n), 0) INTO v_most
        FROM (SELECT count(*) AS n FROM __schema__.key_grants WHERE policy = p_name GROUP BY key) AS g;
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

-- End of a governed attempt: the grant goes with the lease, in the same
-- transaction, whatever ends it. A pending lower limit is promoted here when
-- the catalog lock is free (never waited for); else by the next change.
CREATE OR REPLACE FUNCTION __schema__.release_key_grant()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_policy  text;
    v_pending boolean;
BEGIN
    -- one statement per row: the grant and whether its policy has a pending limit
    DELETE FROM __schema__.key_grants AS g WHERE g.job_id = OLD.id AND g.run_lease = OLD.run_lease
    RETURNING g.policy, EXISTS (SELECT 1 FROM __schema__.key_policies AS p
                                WHERE p.name = g.policy AND p.pending_max IS NOT NULL)
    INTO v_policy, v_pending;
    IF v_policy IS NOT NULL THEN
        -- a gated job of this key may now run
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_jobs', OLD.queue);
        IF v_pending AND pg_try_advisory_xact_lock(hashtext('__schema__.key_policies'), 20) THEN
            PERFORM __schema__.key_settle_locked(v_policy);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_release_key_grant
    AFTER UPDATE OF state ON __schema__.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'running' AND NEW.state <> 'running'
          AND (OLD.concurrency_key IS NOT NULL OR OLD.ordering_key IS NOT NULL))
    EXECUTE FUNCTION __schema__.release_key_grant();

CREATE TRIGGER jobs_release_key_grant_on_delete
    AFTER DELETE ON __schema__.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'running')
    EXECUTE FUNCTION __schema__.release_key_grant();
