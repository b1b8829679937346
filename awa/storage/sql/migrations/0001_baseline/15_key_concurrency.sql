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
LANGUAGE plpgsql AS $$
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

-- Admit candidates (in lane order) under a policy: a job is admitted when
-- it has no key, or its key was locked here (try-lock, never waits), is not
-- in p_behind (keys with jobs parked before these) and has room: the key's
-- grants (this transaction's included) plus its earlier candidates are below
-- p_cap. Takes the first p_limit admitted, writes their grants (p_leases:
-- the candidates' run_lease as read under the lane's claim head, which no
-- one else can change before this claim commits); returns the
-- taken ids and numbers, and the number of the first admitted job left for
-- want of room in the claim (NULL when none).
CREATE OR REPLACE FUNCTION __schema__.key_admit(
    p_policy text,
    p_cap    integer,
    p_limit  integer,
    p_ids    bigint[],
    p_seqs   bigint[],
    p_keys   bytea[],
    p_leases bigint[],
    p_behind bytea[],
    OUT taken_ids  bigint[],
    OUT taken_seqs bigint[],
    OUT stop_seq   bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    v_locked bytea[];
BEGIN
    -- Serialise on each distinct key first (own statement: the count below
    -- must take its snapshot after the locks are granted).
    v_locked := ARRAY(
        SELECT k FROM (SELECT DISTINCT k FROM unnest(p_keys) AS u(k)
                       WHERE k IS NOT NULL AND NOT (k = ANY (p_behind))) AS d
        WHERE __schema__.key_try_lock(p_policy, d.k));
    WITH cand AS (
        SELECT u.id, u.seq, u.k, u.lease FROM unnest(p_ids, p_seqs, p_keys, p_leases) AS u(id, seq, k, lease)
    ), held AS (
        SELECT g.key AS k, count(*) AS n FROM __schema__.key_grants AS g
        WHERE g.policy = p_policy AND g.key = ANY (v_locked)
        GROUP BY g.key
    ), ranked AS (
        SELECT c.id, c.seq, c.k, c.lease,
               CASE WHEN c.k IS NULL THEN true
                    WHEN NOT (c.k = ANY (v_locked)) THEN false
                    ELSE coalesce(h.n, 0) + row_number() OVER (PARTITION BY c.k ORDER BY c.seq) <= p_cap
               END AS ok
        FROM cand AS c LEFT JOIN held AS h ON h.k = c.k
    ), numbered AS (
        SELECT r.*, row_number() OVER (ORDER BY r.seq) AS n FROM ranked AS r WHERE r.ok
    ), granted AS (
        INSERT INTO __schema__.key_grants (job_id, run_lease, policy, key)
        SELECT t.id, t.lease + 1, p_policy, t.k
        FROM numbered AS t
        WHERE t.n <= p_limit AND t.k IS NOT NULL
    )
    SELECT coalesce(array_agg(t.id ORDER BY t.seq) FILTER (WHERE t.n <= p_limit), '{}'),
           coalesce(array_agg(t.seq ORDER BY t.seq) FILTER (WHERE t.n <= p_limit), '{}'),
           min(t.seq) FILTER (WHERE t.n > p_limit)
    INTO taken_ids, taken_seqs, stop_seq
    FROM numbered AS t;
END
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
-- taken; grants are written here, the rows are marked running by the caller.
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
    v_pol        __schema__.key_policies;
    v_cap        integer;
    v_window     bigint;
    v_left       integer := p_limit;
    v_frontier   bigint;
    v_next       bigint;
    v_end        bigint;
    v_hi         bigint;
    v_heads      integer;
    v_behind     bytea[];
    v_ids        bigint[];
    v_seqs       bigint[];
    v_keys       bytea[];
    v_leases     bigint[];
    v_stale      bigint[];
    v_got        record;
    v_taken      bigint[] := '{}';
    v_taken_seqs bigint[] := '{}';
    v_first      bigint;
    v_new_cursor bigint;
    v_prefix     integer;
BEGIN
    SELECT * INTO v_pol FROM __schema__.key_policies WHERE name = p_policy;
    IF NOT FOUND OR p_limit <= 0 THEN
        RETURN '{}';
    END IF;
    v_cap := least(v_pol.max_in_flight, coalesce(v_pol.pending_max, v_pol.max_in_flight));
    v_window := greatest(v_pol.look_ahead, p_limit);
    -- Read before any job (a later snapshot sees every job numbered below it).
    SELECT e.next_seq INTO v_next FROM __schema__.enqueue_heads AS e
    WHERE e.queue = p_queue AND e.priority = p_priority AND e.enqueue_shard = p_shard;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    -- A fenced lane hands out numbers up to its fence only (16_repartition.sql).
    SELECT least(v_next, c.fence_seq + 1) INTO v_next FROM __schema__.claim_heads AS c
    WHERE c.queue = p_queue AND c.priority = p_priority AND c.enqueue_shard = p_shard;
    SELECT s.frontier INTO v_frontier FROM __schema__.key_lane_state AS s
    WHERE s.queue = p_queue AND s.priority = p_priority AND s.enqueue_shard = p_shard;
    v_frontier := greatest(coalesce(v_frontier, p_cursor), p_cursor);

    -- 1. Parked heads and the next parked jobs of their keys, still there.
    WITH h AS (
        SELECT p.key FROM __schema__.key_parked AS p
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head
        ORDER BY p.lane_seq
        LIMIT v_window
    ), r AS (
        SELECT h.key, x.lane_seq, x.job_id, j.run_lease AS lease,
               j.id IS NOT NULL AND x.lane_seq > p_cursor AS live,
               __schema__.key_of(j.concurrency_key, j.ordering_key, v_pol.from_ordering_key) AS k
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
           array_agg(r.lease ORDER BY r.lane_seq) FILTER (WHERE r.live),
           array_agg(r.lane_seq) FILTER (WHERE NOT r.live)
    INTO v_heads, v_behind, v_ids, v_seqs, v_keys, v_leases, v_stale
    FROM r;
    IF v_ids IS NOT NULL THEN
        SELECT * INTO v_got FROM __schema__.key_admit(p_policy, v_cap, v_left, v_ids, v_seqs, v_keys, v_leases, '{}');
        v_taken := v_got.taken_ids;
        v_taken_seqs := v_got.taken_seqs;
        v_left := v_left - cardinality(v_taken);
    END IF;
    IF cardinality(v_taken_seqs) > 0 OR v_stale IS NOT NULL THEN
        -- Unpark what was taken or is gone; the next of each such key becomes its head.
        -- Both statements name whole primary keys (lane, key, lane_seq): a
        -- join here was planned as a scan of the lane's parked rows with a
        -- lookup per row (44 ms a claim with 10,000 rows of a hot key parked).
        DELETE FROM __schema__.key_parked AS p
        WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard
          AND p.key = ANY (v_behind)
          AND p.lane_seq = ANY (v_taken_seqs || coalesce(v_stale, '{}'));
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

    -- 2. New numbers past the frontier, unless the heads filled the window.
    -- Every key with parked jobs is in v_behind (fewer than W heads: all of
    -- them were read), so none of its later jobs overtakes them.
    v_end := least(v_frontier + v_window, v_next - 1);
    WHILE v_left > 0 AND v_heads < v_window AND v_frontier < v_end LOOP
        v_hi := least(v_frontier + greatest(2 * v_left, 16), v_end);
        SELECT array_agg(j.id ORDER BY j.lane_seq), array_agg(j.lane_seq ORDER BY j.lane_seq),
               array_agg(__schema__.key_of(j.concurrency_key, j.ordering_key, v_pol.from_ordering_key)
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
        IF v_ids IS NULL THEN
            v_frontier := v_hi;  -- holes only
            CONTINUE;
        END IF;
        SELECT * INTO v_got FROM __schema__.key_admit(p_policy, v_cap, v_left, v_ids, v_seqs, v_keys, v_leases, v_behind);
        v_taken := v_taken || v_got.taken_ids;
        v_taken_seqs := v_taken_seqs || v_got.taken_seqs;
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
        END IF;
        v_frontier := v_hi;
    END LOOP;

    -- The cursor stops before the first parked job (a head: the first of its key).
    SELECT min(p.lane_seq) INTO v_first FROM __schema__.key_parked AS p
    WHERE p.queue = p_queue AND p.priority = p_priority AND p.enqueue_shard = p_shard AND p.head;
    v_new_cursor := greatest(coalesce(least(v_first - 1, v_frontier), v_frontier), p_cursor);
    SELECT count(*) INTO v_prefix FROM unnest(v_taken_seqs) AS u(seq) WHERE u.seq <= v_new_cursor;

    UPDATE __schema__.claim_heads AS c
    SET claim_seq = v_new_cursor,
        holes = greatest(c.holes - ((v_new_cursor - p_cursor) - v_prefix), 0)
                + (cardinality(v_taken) - v_prefix)
    WHERE c.queue = p_queue AND c.priority = p_priority AND c.enqueue_shard = p_shard;
    IF v_new_cursor > p_cursor THEN
        DELETE FROM __schema__.lane_segments AS g
        WHERE g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
          AND g.last_seq <= v_new_cursor;
    END IF;
    INSERT INTO __schema__.key_lane_state AS s (queue, priority, enqueue_shard, frontier)
    VALUES (p_queue, p_priority, p_shard, v_frontier)
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
        -- The rows first: marked under their row locks, so an attempt ending
        -- meanwhile either ended before (no grant) or waits and then releases it.
        WITH marked AS (
            UPDATE __schema__.jobs AS j SET key_granted = true
            WHERE j.state = 'running' AND __schema__.logical_queue(j.queue) = p_name
              AND __schema__.key_of(j.concurrency_key, j.ordering_key, v_old.from_ordering_key) IS NOT NULL
            RETURNING j.id, j.run_lease,
                      __schema__.key_of(j.concurrency_key, j.ordering_key, v_old.from_ordering_key) AS key
        )
        INSERT INTO __schema__.key_grants (job_id, run_lease, policy, key)
        SELECT m.id, m.run_lease, p_name, m.key FROM marked AS m
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
    WHEN (OLD.state = 'running' AND NEW.state <> 'running' AND OLD.key_granted)
    EXECUTE FUNCTION __schema__.release_key_grant();

CREATE TRIGGER jobs_release_key_grant_on_delete
    AFTER DELETE ON __schema__.jobs
    FOR EACH ROW
    WHEN (OLD.state = 'running' AND OLD.key_granted)
    EXECUTE FUNCTION __schema__.release_key_grant();
