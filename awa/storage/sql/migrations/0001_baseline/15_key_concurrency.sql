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
CREATE OR REPLACE FUNCTION __schema__.key_try_lock(p_policy text, p_key bytea)
RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_try_advisory_xact_lock(
        ('x' || left(md5('__schema__' || E'\n' || p_policy || E'\n' || encode(p_key, 'hex')), 16))::bit(64)::bigint)
$$;

-- What a governed lane's last claim examined past its cursor: every
-- available job numbered cursor + 1 .. frontier is in blocked (ids and lane
-- numbers, in lane order); the others there were taken or are holes. So a
-- claim re-reads only those, never the jobs already taken ahead of a blocked
-- one. Written only under the lane's claim head.
CREATE TABLE __schema__.key_lane_state (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    frontier      bigint   NOT NULL,
    blocked_ids   bigint[] NOT NULL,
    blocked_seqs  bigint[] NOT NULL,
    PRIMARY KEY (queue, priority, enqueue_shard)
);

-- Claim from one lane of a governed queue; the caller holds the lane's claim
-- head and has p_cursor = its claim_seq. Candidates: the lane's blocked jobs
-- (key_lane_state), then the numbers past its frontier, at most W = greatest(
-- look_ahead, p_limit) candidates in all. In lane order, takes at most
-- p_limit of those whose key has room. The cursor moves only over the
-- contiguous prefix taken (or holes); a job taken behind a blocked one leaves
-- its number as a hole, like a cancelled job. Returns the ids taken, in lane
-- order; grants are written here, the rows are marked running by the caller.
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
    v_state      __schema__.key_lane_state;
    v_from       bigint;
    v_room       bigint;
    v_next       bigint;
    v_ids        bigint[];
    v_seqs       bigint[];
    v_keys       bytea[];
    v_new_ids    bigint[];
    v_new_seqs   bigint[];
    v_new_keys   bytea[];
    v_locked     bytea[];
    v_taken      bigint[];
    v_taken_seqs bigint[];
    v_frontier   bigint;
    v_new_cursor bigint;
    v_prefix     integer;
BEGIN
    SELECT * INTO v_pol FROM __schema__.key_policies WHERE name = p_policy;
    IF NOT FOUND OR p_limit <= 0 THEN
        RETURN '{}';
    END IF;
    v_cap := least(v_pol.max_in_flight, coalesce(v_pol.pending_max, v_pol.max_in_flight));
    v_window := greatest(v_pol.look_ahead, p_limit);

    -- The blocked jobs still there (a cancel may have taken one; a cursor
    -- moved by an unkeyed claim, the policy dropped meanwhile, passed some).
    SELECT * INTO v_state FROM __schema__.key_lane_state AS s
    WHERE s.queue = p_queue AND s.priority = p_priority AND s.enqueue_shard = p_shard;
    v_from := greatest(coalesce(v_state.frontier, p_cursor), p_cursor);
    SELECT array_agg(j.id ORDER BY b.seq), array_agg(b.seq ORDER BY b.seq),
           array_agg(coalesce(j.concurrency_key, CASE WHEN v_pol.from_ordering_key THEN j.ordering_key END)
                     ORDER BY b.seq)
    INTO v_ids, v_seqs, v_keys
    FROM unnest(v_state.blocked_ids, v_state.blocked_seqs) AS b(id, seq)
    JOIN __schema__.jobs AS j ON j.id = b.id AND j.lane_seq = b.seq AND j.state = 'available'
     AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
    WHERE b.seq > p_cursor;
    v_room := v_window - coalesce(cardinality(v_ids), 0);

    -- Then the numbers past the frontier, with the lane head, in one snapshot
    -- (as in the unkeyed walk).
    SELECT e.next_seq, c.ids, c.seqs, c.keys INTO v_next, v_new_ids, v_new_seqs, v_new_keys
    FROM __schema__.enqueue_heads AS e
    CROSS JOIN LATERAL (
        SELECT array_agg(j.id ORDER BY j.lane_seq) AS ids,
               array_agg(j.lane_seq ORDER BY j.lane_seq) AS seqs,
               array_agg(coalesce(j.concurrency_key,
                                  CASE WHEN v_pol.from_ordering_key THEN j.ordering_key END)
                         ORDER BY j.lane_seq) AS keys
        FROM __schema__.lane_segments AS g
        JOIN __schema__.jobs AS j
          ON j.id BETWEEN g.first_id + (greatest(g.first_seq, v_from + 1) - g.first_seq)
                      AND g.first_id + (least(g.last_seq, v_from + v_room) - g.first_seq)
         AND j.lane_seq = g.first_seq + (j.id - g.first_id)
         AND j.state = 'available'
         AND j.queue = p_queue AND j.priority = p_priority AND j.enqueue_shard = p_shard
        WHERE v_room > 0
          AND g.queue = p_queue AND g.priority = p_priority AND g.enqueue_shard = p_shard
          AND g.last_seq > v_from AND g.first_seq <= v_from + v_room
    ) AS c
    WHERE e.queue = p_queue AND e.priority = p_priority AND e.enqueue_shard = p_shard;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    v_frontier := CASE WHEN v_room > 0 THEN greatest(v_from, least(v_from + v_room, v_next - 1)) ELSE v_from END;
    v_ids := coalesce(v_ids, '{}') || coalesce(v_new_ids, '{}');
    v_seqs := coalesce(v_seqs, '{}') || coalesce(v_new_seqs, '{}');
    v_keys := coalesce(v_keys, '{}') || coalesce(v_new_keys, '{}');

    -- Serialise on each distinct key first (own statement: the count below
    -- must take its snapshot after the locks are granted).
    v_locked := ARRAY(
        SELECT k FROM (SELECT DISTINCT k FROM unnest(v_keys) AS u(k) WHERE k IS NOT NULL) AS d
        WHERE __schema__.key_try_lock(p_policy, d.k));

    -- A job is admitted when its key has room (grants so far, this
    -- transaction's included, plus the earlier candidates of its key), then
    -- the first p_limit admitted in lane order are taken.
    WITH cand AS (
        SELECT u.id, u.seq, u.k FROM unnest(v_ids, v_seqs, v_keys) AS u(id, seq, k)
    ), held AS (
        SELECT g.key AS k, count(*) AS n FROM __schema__.key_grants AS g
        WHERE g.policy = p_policy AND g.key = ANY (v_locked)
        GROUP BY g.key
    ), ranked AS (
        SELECT c.id, c.seq, c.k,
               CASE WHEN c.k IS NULL THEN true
                    WHEN NOT (c.k = ANY (v_locked)) THEN false
                    ELSE coalesce(h.n, 0) + row_number() OVER (PARTITION BY c.k ORDER BY c.seq) <= v_cap
               END AS ok
        FROM cand AS c LEFT JOIN held AS h ON h.k = c.k
    ), taken AS (
        SELECT r.id, r.seq, r.k FROM ranked AS r WHERE r.ok ORDER BY r.seq LIMIT p_limit
    ), granted AS (
        INSERT INTO __schema__.key_grants (job_id, run_lease, policy, key)
        SELECT t.id, j.run_lease + 1, p_policy, t.k
        FROM taken AS t JOIN __schema__.jobs AS j ON j.id = t.id
        WHERE t.k IS NOT NULL
    )
    SELECT array_agg(t.id ORDER BY t.seq), array_agg(t.seq ORDER BY t.seq) INTO v_taken, v_taken_seqs
    FROM taken AS t;
    v_taken := coalesce(v_taken, '{}');
    v_taken_seqs := coalesce(v_taken_seqs, '{}');

    -- Left behind: the new blocked list. The cursor stops before its first.
    SELECT array_agg(u.id ORDER BY u.seq), array_agg(u.seq ORDER BY u.seq) INTO v_new_ids, v_new_seqs
    FROM unnest(v_ids, v_seqs) AS u(id, seq)
    WHERE NOT (u.seq = ANY (v_taken_seqs));
    v_new_cursor := greatest(coalesce(v_new_seqs[1] - 1, v_frontier), p_cursor);
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
    INSERT INTO __schema__.key_lane_state AS s (queue, priority, enqueue_shard, frontier, blocked_ids, blocked_seqs)
    VALUES (p_queue, p_priority, p_shard, v_frontier, coalesce(v_new_ids, '{}'), coalesce(v_new_seqs, '{}'))
    ON CONFLICT (queue, priority, enqueue_shard) DO UPDATE
    SET frontier = excluded.frontier, blocked_ids = excluded.blocked_ids, blocked_seqs = excluded.blocked_seqs;
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
    v_policy text;
BEGIN
    DELETE FROM __schema__.key_grants WHERE job_id = OLD.id AND run_lease = OLD.run_lease
    RETURNING policy INTO v_policy;
    IF v_policy IS NOT NULL THEN
        -- a gated job of this key may now run
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_jobs', OLD.queue);
        IF EXISTS (SELECT 1 FROM __schema__.key_policies WHERE name = v_policy AND pending_max IS NOT NULL)
           AND pg_try_advisory_xact_lock(hashtext('__schema__.key_policies'), 20) THEN
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
