-- Online repartitioning (ADR 0024, specs/PartitionedQueueRepartition.tla).
--
-- A width change of a registered logical queue bumps its epoch
-- (queue_partitions.epoch), records one partition_epochs row, the marks of
-- the source lanes (partition_marks: next_seq - 1 at the change) and a fence
-- on every lane of a destination partition (lane_fences, at that lane's own
-- mark). A lane hands out numbers only up to its smallest unlifted fence
-- (claim_heads.fence_seq, read by the claim with its cursor). The lift step
-- (lift_fences) takes a fence down once every source lane has handed out its
-- mark and carries no unlifted fence of an earlier change.
--
-- Exclusion: every path that puts a job into a lane of a registered logical
-- queue (insert_job, enqueue_reserve, make_available: promotion, retry,
-- rescue; cron fires call insert_job) takes the queue's advisory key shared
-- and reads the width after it; a change takes it exclusively. No row is
-- written for it, so producers outside a change pay one lock-table entry.
--
-- Routing after a change: once a queue's epoch is above 1, the database
-- routes a keyed job with the registered width and the awa hash
-- (partition_for_ordering_key, ADR 0002), whatever partition the producer
-- named, and moves an unkeyed job named for a removed partition into the
-- width (index mod width). At epoch 1 the producer's routing stands (it was
-- checked against the registry when it built its PartitionedQueue).

CREATE TABLE __schema__.partition_epochs (
    logical_queue text        NOT NULL REFERENCES __schema__.queue_partitions (logical_queue) ON DELETE CASCADE,
    epoch         integer     NOT NULL CHECK (epoch >= 2),
    old_width     integer     NOT NULL CHECK (old_width BETWEEN 1 AND 32767),
    new_width     integer     NOT NULL CHECK (new_width BETWEEN 1 AND 32767),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    PRIMARY KEY (logical_queue, epoch)
);

-- mark(S) of every lane S of the old partitions at the change into epoch.
CREATE TABLE __schema__.partition_marks (
    logical_queue text     NOT NULL,
    epoch         integer  NOT NULL,
    part          integer  NOT NULL,
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    mark          bigint   NOT NULL,
    PRIMARY KEY (logical_queue, epoch, part, queue, priority, enqueue_shard),
    FOREIGN KEY (logical_queue, epoch) REFERENCES __schema__.partition_epochs ON DELETE CASCADE
);

-- A fence of change epoch on a lane of destination partition part.
CREATE TABLE __schema__.lane_fences (
    logical_queue text        NOT NULL,
    epoch         integer     NOT NULL,
    part          integer     NOT NULL,
    queue         text        NOT NULL,
    priority      smallint    NOT NULL,
    enqueue_shard smallint    NOT NULL,
    mark          bigint      NOT NULL,
    lifted_at     timestamptz,
    PRIMARY KEY (logical_queue, epoch, queue, priority, enqueue_shard),
    FOREIGN KEY (logical_queue, epoch) REFERENCES __schema__.partition_epochs ON DELETE CASCADE
);
CREATE INDEX lane_fences_up ON __schema__.lane_fences (queue, priority, enqueue_shard) WHERE lifted_at IS NULL;

-- The physical queue of partition p of logical queue p_logical.
CREATE OR REPLACE FUNCTION __schema__.partition_queue(p_logical text, p_part integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_part = 0 THEN p_logical ELSE p_logical || '__p' || p_part END
$$;

-- The partition index of a physical queue (0 for a name without suffix).
CREATE OR REPLACE FUNCTION __schema__.queue_partition(p_queue text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce((regexp_match(p_queue, '__p([1-9][0-9]*)$'))[1]::integer, 0)
$$;

-- The queue's advisory key: shared by producers, exclusive for a change.
CREATE OR REPLACE FUNCTION __schema__.partition_key_lock(p_logical text, p_exclusive boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(hashtext('__schema__.queue_partitions'), hashtext(p_logical));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashtext('__schema__.queue_partitions'), hashtext(p_logical));
    END IF;
END
$$;

-- The same key shared, if nobody holds it exclusively now; never waits.
CREATE OR REPLACE FUNCTION __schema__.partition_key_try_shared(p_logical text)
RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_try_advisory_xact_lock_shared(hashtext('__schema__.queue_partitions'), hashtext(p_logical))
$$;

-- Where a job for p_queue with ordering key p_key goes (the Begin and Insert
-- of the spec): p_queue itself unless p_queue is a partition of a registered
-- logical queue that has changed width. Takes the queue's key shared (held to
-- the end of the caller's transaction) and reads the width after it.
CREATE OR REPLACE FUNCTION __schema__.route_queue(p_queue text, p_key bytea)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_logical text := __schema__.logical_queue(p_queue);
    v_width   integer;
    v_epoch   integer;
    v_part    integer;
BEGIN
    PERFORM 1 FROM __schema__.queue_partitions WHERE logical_queue = v_logical;
    IF NOT FOUND THEN
        RETURN p_queue;
    END IF;
    PERFORM __schema__.partition_key_lock(v_logical, false);
    SELECT partitions, epoch INTO v_width, v_epoch
    FROM __schema__.queue_partitions WHERE logical_queue = v_logical;
    IF NOT FOUND OR v_epoch = 1 THEN
        RETURN p_queue;
    END IF;
    IF p_key IS NOT NULL THEN
        v_part := __schema__.partition_for_ordering_key(p_key, v_width);
    ELSE
        v_part := __schema__.queue_partition(p_queue);
        IF v_part < v_width THEN
            RETURN p_queue;
        END IF;
        v_part := v_part % v_width;
    END IF;
    RETURN __schema__.partition_queue(v_logical, v_part);
END
$$;

-- For a COPY reservation: per queue, the width its rows must be routed with
-- (0: as the producer routed them), taking the key of every registered
-- logical queue among them shared, in name order.
CREATE OR REPLACE FUNCTION __schema__.route_widths(p_queues text[])
RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
    v_logical text;
BEGIN
    FOR v_logical IN
        SELECT DISTINCT r.logical_queue FROM __schema__.queue_partitions AS r
        WHERE r.logical_queue IN (SELECT __schema__.logical_queue(q) FROM unnest(p_queues) AS q)
        ORDER BY r.logical_queue
    LOOP
        PERFORM __schema__.partition_key_lock(v_logical, false);
    END LOOP;
    RETURN ARRAY(
        SELECT coalesce((SELECT CASE WHEN r.epoch > 1 THEN r.partitions ELSE 0 END
                         FROM __schema__.queue_partitions AS r
                         WHERE r.logical_queue = __schema__.logical_queue(u.q)), 0)
        FROM unnest(p_queues) WITH ORDINALITY AS u(q, ord)
        ORDER BY u.ord);
END
$$;

-- Move the jobs p_ids (locked by the caller, about to become available) to
-- the partition the current width gives them; a moved job takes the shard
-- of its key in the new queue (an unkeyed one its shard modulo the count).
CREATE OR REPLACE FUNCTION __schema__.reroute_jobs(p_ids bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH routed AS (
        SELECT j.id, j.ordering_key, j.enqueue_shard, __schema__.route_queue(j.queue, j.ordering_key) AS target, j.queue
        FROM __schema__.jobs AS j
        WHERE j.id = ANY (p_ids)
    ), moved AS (
        SELECT * FROM routed WHERE target <> queue
    ), registered AS (
        INSERT INTO __schema__.queues (name)
        SELECT DISTINCT target FROM moved ORDER BY target
        ON CONFLICT (name) DO NOTHING
    )
    UPDATE __schema__.jobs AS j
    SET queue = m.target,
        enqueue_shard = CASE
            WHEN m.ordering_key IS NOT NULL
                THEN __schema__.shard_for_ordering_key(m.ordering_key, coalesce(q.enqueue_shards, 1))
            ELSE m.enqueue_shard % coalesce(q.enqueue_shards, 1) END
    FROM moved AS m
    LEFT JOIN __schema__.queues AS q ON q.name = m.target
    WHERE j.id = m.id;
END
$$;

-- One width change (Change of the spec), in the caller's transaction.
-- Outcome: 'changed', 'unchanged' (already that width), 'unregistered', or
-- 'busy' (the key was not free within p_lock_timeout_ms, p_attempts times:
-- another change, or a producer transaction that stays open).
CREATE OR REPLACE FUNCTION __schema__.repartition(
    p_logical         text,
    p_width           integer,
    p_lock_timeout_ms integer,
    p_attempts        integer,
    OUT outcome       text,
    OUT epoch         integer,
    OUT old_width     integer
)
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_old     integer;
    v_epoch   integer;
    v_timeout text := current_setting('lock_timeout');
    v_got     boolean := false;
    v_gcd     integer;
BEGIN
    PERFORM 1 FROM __schema__.queue_partitions AS r WHERE r.logical_queue = p_logical;
    IF NOT FOUND THEN
        outcome := 'unregistered';
        RETURN;
    END IF;
    FOR i IN 1 .. greatest(p_attempts, 1) LOOP
        BEGIN
            PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
            PERFORM __schema__.partition_key_lock(p_logical, true);
            v_got := true;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_sleep(least(0.05 * i, 0.5));
        END;
        EXIT WHEN v_got;
    END LOOP;
    PERFORM set_config('lock_timeout', v_timeout, true);
    IF NOT v_got THEN
        outcome := 'busy';
        RETURN;
    END IF;

    SELECT r.partitions, r.epoch INTO v_old, v_epoch
    FROM __schema__.queue_partitions AS r WHERE r.logical_queue = p_logical FOR UPDATE;
    IF v_old = p_width THEN
        outcome := 'unchanged';
        epoch := v_epoch;
        old_width := v_old;
        RETURN;
    END IF;
    v_epoch := v_epoch + 1;
    v_gcd := gcd(v_old, p_width);

    UPDATE __schema__.queue_partitions AS r SET partitions = p_width, epoch = v_epoch, updated_at = now()
    WHERE r.logical_queue = p_logical;
    INSERT INTO __schema__.partition_epochs (logical_queue, epoch, old_width, new_width)
    VALUES (p_logical, v_epoch, v_old, p_width);

    -- Every job routed with the old width is committed or gone (the key is
    -- held exclusively), but single inserts may not be numbered yet: number
    -- every lane of the queue's partitions first (ADR 0028), heads in key
    -- order, so the marks below cover every job routed with the old width.
    PERFORM __schema__.bump_enqueue_heads(array_agg(h.queue), array_agg(h.priority), array_agg(h.enqueue_shard),
                                          array_fill(0, ARRAY[count(*)::integer]))
    FROM (
        SELECT h.queue, h.priority, h.enqueue_shard
        FROM generate_series(0, greatest(v_old, p_width) - 1) AS p(part)
        JOIN __schema__.enqueue_heads AS h ON h.queue = __schema__.partition_queue(p_logical, p.part)
        ORDER BY h.queue, h.priority, h.enqueue_shard
    ) AS h
    HAVING count(*) > 0;

    -- Marks of every lane of the old partitions (the sources of any fence):
    -- lanes with a head, and lanes without one that carry an unlifted fence
    -- (mark 0), whose fence the chained lift clause must still see.
    INSERT INTO __schema__.partition_marks (logical_queue, epoch, part, queue, priority, enqueue_shard, mark)
    SELECT p_logical, v_epoch, l.part, l.queue, l.priority, l.enqueue_shard, coalesce(h.next_seq - 1, 0)
    FROM (
        SELECT p.part, h.queue, h.priority, h.enqueue_shard
        FROM generate_series(0, v_old - 1) AS p(part)
        JOIN __schema__.enqueue_heads AS h ON h.queue = __schema__.partition_queue(p_logical, p.part)
        UNION
        SELECT f.part, f.queue, f.priority, f.enqueue_shard
        FROM __schema__.lane_fences AS f
        WHERE f.logical_queue = p_logical AND f.lifted_at IS NULL AND f.part < v_old
    ) AS l
    LEFT JOIN __schema__.enqueue_heads AS h
           ON h.queue = l.queue AND h.priority = l.priority AND h.enqueue_shard = l.enqueue_shard;

    -- Fences: every lane of a destination partition that has a source (an
    -- old partition s <> d with s = d mod gcd), every priority and shard, at
    -- the lane's own mark; claim heads created where missing.
    WITH dest AS (
        SELECT d.part, __schema__.partition_queue(p_logical, d.part) AS queue
        FROM generate_series(0, p_width - 1) AS d(part)
        WHERE EXISTS (SELECT 1 FROM generate_series(0, v_old - 1) AS s(part)
                      WHERE s.part <> d.part AND s.part % v_gcd = d.part % v_gcd)
    ), lanes AS (
        SELECT d.part, d.queue, pr.priority::smallint AS priority, sh.shard::smallint AS enqueue_shard
        FROM dest AS d
        CROSS JOIN generate_series(1, 4) AS pr(priority)
        CROSS JOIN LATERAL generate_series(
            0, coalesce((SELECT q.enqueue_shards FROM __schema__.queues AS q WHERE q.name = d.queue), 1) - 1) AS sh(shard)
        UNION
        SELECT d.part, d.queue, h.priority, h.enqueue_shard
        FROM dest AS d JOIN __schema__.enqueue_heads AS h ON h.queue = d.queue
    ), marked AS (
        SELECT l.*, coalesce(h.next_seq - 1, 0) AS mark
        FROM lanes AS l
        LEFT JOIN __schema__.enqueue_heads AS h
               ON h.queue = l.queue AND h.priority = l.priority AND h.enqueue_shard = l.enqueue_shard
    ), fenced AS (
        INSERT INTO __schema__.lane_fences (logical_queue, epoch, part, queue, priority, enqueue_shard, mark)
        SELECT p_logical, v_epoch, m.part, m.queue, m.priority, m.enqueue_shard, m.mark FROM marked AS m
        RETURNING queue, priority, enqueue_shard, mark
    )
    INSERT INTO __schema__.claim_heads AS c (queue, priority, enqueue_shard, fence_seq)
    SELECT f.queue, f.priority, f.enqueue_shard, f.mark FROM fenced AS f
    ORDER BY f.queue, f.priority, f.enqueue_shard
    ON CONFLICT (queue, priority, enqueue_shard)
    DO UPDATE SET fence_seq = least(coalesce(c.fence_seq, excluded.fence_seq), excluded.fence_seq);
    outcome := 'changed';
    epoch := v_epoch;
    old_width := v_old;
END
$$;

-- The lift step (LiftFence of the spec) for one logical queue, or all when
-- p_logical is NULL: lift every fence of change e whose source lanes have
-- handed out their marks of e and carry no unlifted fence of a change before
-- e, until none lifts; set each lane's fence_seq to its smallest unlifted
-- fence; then finish the changes whose fences are all lifted and whose
-- removed partitions hold no available or running job. Returns the number
-- of fences lifted.
CREATE OR REPLACE FUNCTION __schema__.lift_fences(p_logical text)
RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_round integer;
    v_total integer := 0;
BEGIN
    LOOP
        WITH lifted AS (
            UPDATE __schema__.lane_fences AS f
            SET lifted_at = now()
            FROM __schema__.partition_epochs AS e
            WHERE f.lifted_at IS NULL
              AND (p_logical IS NULL OR f.logical_queue = p_logical)
              AND e.logical_queue = f.logical_queue AND e.epoch = f.epoch
              AND NOT EXISTS (
                  SELECT 1 FROM __schema__.partition_marks AS m
                  LEFT JOIN __schema__.claim_heads AS c
                         ON c.queue = m.queue AND c.priority = m.priority AND c.enqueue_shard = m.enqueue_shard
                  WHERE m.logical_queue = f.logical_queue AND m.epoch = f.epoch
                    AND m.part <> f.part
                    AND m.part % gcd(e.old_width, e.new_width) = f.part % gcd(e.old_width, e.new_width)
                    AND (coalesce(c.claim_seq, 0) < m.mark
                         OR EXISTS (SELECT 1 FROM __schema__.lane_fences AS g
                                    WHERE g.queue = m.queue AND g.priority = m.priority
                                      AND g.enqueue_shard = m.enqueue_shard
                                      AND g.lifted_at IS NULL AND g.epoch < f.epoch
                                      AND g.logical_queue = f.logical_queue)))
            RETURNING 1
        )
        SELECT count(*) INTO v_round FROM lifted;
        EXIT WHEN v_round = 0;
        v_total := v_total + v_round;
    END LOOP;
    IF v_total > 0 THEN
        UPDATE __schema__.claim_heads AS c
        SET fence_seq = n.fence_seq
        FROM (
            SELECT h.queue, h.priority, h.enqueue_shard,
                   (SELECT min(g.mark) FROM __schema__.lane_fences AS g
                    WHERE g.queue = h.queue AND g.priority = h.priority AND g.enqueue_shard = h.enqueue_shard
                      AND g.lifted_at IS NULL) AS fence_seq
            FROM __schema__.claim_heads AS h
            WHERE h.fence_seq IS NOT NULL
            ORDER BY h.queue, h.priority, h.enqueue_shard
        ) AS n
        WHERE c.queue = n.queue AND c.priority = n.priority AND c.enqueue_shard = n.enqueue_shard
          AND c.fence_seq IS DISTINCT FROM n.fence_seq;
    END IF;

    -- Finished: every fence lifted and no available or running job left in
    -- a partition at or above the new width (scheduled and retryable jobs
    -- there are routed with the current width when they become due).
    UPDATE __schema__.partition_epochs AS e
    SET finished_at = now()
    WHERE e.finished_at IS NULL
      AND (p_logical IS NULL OR e.logical_queue = p_logical)
      AND NOT EXISTS (SELECT 1 FROM __schema__.lane_fences AS g
                      WHERE g.logical_queue = e.logical_queue AND g.epoch = e.epoch AND g.lifted_at IS NULL)
      AND NOT EXISTS (
          SELECT 1
          FROM generate_series(e.new_width, greatest(e.old_width, e.new_width) - 1) AS p(part)
          JOIN __schema__.enqueue_heads AS h ON h.queue = __schema__.partition_queue(e.logical_queue, p.part)
          LEFT JOIN __schema__.claim_heads AS c
                 ON c.queue = h.queue AND c.priority = h.priority AND c.enqueue_shard = h.enqueue_shard
          WHERE h.next_seq - 1 - coalesce(c.claim_seq, 0) - coalesce(c.holes, 0) > 0
             OR EXISTS (SELECT 1 FROM __schema__.lane_pending AS n
                        WHERE n.queue = h.queue AND n.priority = h.priority AND n.enqueue_shard = h.enqueue_shard)
             OR EXISTS (SELECT 1 FROM __schema__.jobs AS j
                        WHERE j.state = 'running' AND j.queue = h.queue));
    RETURN v_total;
END
$$;
