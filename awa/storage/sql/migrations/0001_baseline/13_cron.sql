-- Periodic (cron) jobs: awa's cron_jobs table, and one record per fired tick.
--
-- Every worker runtime evaluates the schedules with its own clock; exactly
-- one job per (schedule, tick) comes from cron_fire, which in ONE
-- transaction locks the schedule row, refuses a tick at or before
-- last_enqueued_at or already in cron_fires (primary key (name, fire_at)),
-- enqueues the job and records the tick. Leadership, clock skew and restarts
-- therefore never make a second job: the later transaction finds the record
-- (specs/Cron.tla).

CREATE TABLE __schema__.cron_jobs (
    name               text        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    cron_expr          text        NOT NULL,
    timezone           text        NOT NULL DEFAULT 'UTC',
    kind               text        NOT NULL,
    queue              text        NOT NULL DEFAULT 'default',
    args               jsonb       NOT NULL DEFAULT '{}',
    priority           __schema__.job_priority NOT NULL DEFAULT 2,
    max_attempts       __schema__.job_max_attempts NOT NULL DEFAULT 25,
    tags               text[]      NOT NULL DEFAULT '{}',
    metadata           jsonb       NOT NULL DEFAULT '{}',
    missed_fire_policy text        NOT NULL DEFAULT 'coalesce'
        CHECK (missed_fire_policy IN ('coalesce', 'catch_up')),
    last_enqueued_at   timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    paused_at          timestamptz,
    paused_by          text
);

CREATE TABLE __schema__.cron_fires (
    name     text        NOT NULL REFERENCES __schema__.cron_jobs (name) ON DELETE CASCADE,
    fire_at  timestamptz NOT NULL,
    job_id   bigint      NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, fire_at)
);

-- Register or update a schedule's definition; its fire history and pause
-- survive (additive: schedules of other deployments are never deleted).
CREATE OR REPLACE FUNCTION __schema__.cron_upsert(
    p_name text, p_cron_expr text, p_timezone text, p_kind text, p_queue text, p_args jsonb,
    p_priority smallint, p_max_attempts smallint, p_tags text[], p_metadata jsonb,
    p_policy text, p_now timestamptz
)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO __schema__.cron_jobs (
        name, cron_expr, timezone, kind, queue, args, priority, max_attempts, tags, metadata,
        missed_fire_policy, created_at, updated_at)
    VALUES (p_name, p_cron_expr, p_timezone, p_kind, p_queue, p_args, p_priority, p_max_attempts,
            p_tags, p_metadata, p_policy, coalesce(p_now, now()), coalesce(p_now, now()))
    ON CONFLICT (name) DO UPDATE SET
        cron_expr = EXCLUDED.cron_expr, timezone = EXCLUDED.timezone, kind = EXCLUDED.kind,
        queue = EXCLUDED.queue, args = EXCLUDED.args, priority = EXCLUDED.priority,
        max_attempts = EXCLUDED.max_attempts, tags = EXCLUDED.tags, metadata = EXCLUDED.metadata,
        missed_fire_policy = EXCLUDED.missed_fire_policy, updated_at = EXCLUDED.updated_at
    WHERE (cron_jobs.cron_expr, cron_jobs.timezone, cron_jobs.kind, cron_jobs.queue, cron_jobs.args,
           cron_jobs.priority, cron_jobs.max_attempts, cron_jobs.tags, cron_jobs.metadata,
           cron_jobs.missed_fire_policy)
          IS DISTINCT FROM
          (EXCLUDED.cron_expr, EXCLUDED.timezone, EXCLUDED.kind, EXCLUDED.queue, EXCLUDED.args,
           EXCLUDED.priority, EXCLUDED.max_attempts, EXCLUDED.tags, EXCLUDED.metadata,
           EXCLUDED.missed_fire_policy)
$$;

-- Fire one tick of a schedule: the job, or no row when the schedule is gone
-- or paused, or the tick was fired already (by this or any other runtime).
CREATE OR REPLACE FUNCTION __schema__.cron_fire(
    p_name text, p_fire_at timestamptz, p_now timestamptz, p_channel text
)
RETURNS SETOF __schema__.jobs
LANGUAGE plpgsql
SET enable_seqscan = off  -- ADR 0039
AS $$
DECLARE
    v_cron   __schema__.cron_jobs;
    v_shards smallint;
    v_job    __schema__.jobs;
BEGIN
    SELECT * INTO v_cron FROM __schema__.cron_jobs WHERE name = p_name FOR UPDATE;
    IF NOT FOUND OR v_cron.paused_at IS NOT NULL
       OR (v_cron.last_enqueued_at IS NOT NULL AND p_fire_at <= v_cron.last_enqueued_at) THEN
        RETURN;
    END IF;
    INSERT INTO __schema__.cron_fires (name, fire_at, job_id, fired_at)
    VALUES (p_name, p_fire_at, 0, coalesce(p_now, now()))
    ON CONFLICT (name, fire_at) DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOR attempt IN 1 .. 8 LOOP  -- enqueue_shards may change under us: read it again
        SELECT coalesce(max(enqueue_shards), 1) INTO v_shards
        FROM __schema__.queues WHERE name = v_cron.queue;
        SELECT * INTO v_job FROM __schema__.insert_job(
            v_cron.queue, v_shards, v_cron.priority,
            (abs(hashtextextended(p_name || p_fire_at::text, 0)) % v_shards)::smallint,
            v_cron.kind, v_cron.args, v_cron.max_attempts, nullif(v_cron.tags, '{}'),
            v_cron.metadata || jsonb_build_object('cron_name', p_name, 'cron_fire_at', p_fire_at),
            NULL, NULL, p_now, p_channel);
        EXIT WHEN v_job.id IS NOT NULL;
    END LOOP;
    IF v_job.id IS NULL THEN
        RAISE EXCEPTION 'enqueue_shards of queue % kept changing while firing %', v_cron.queue, p_name;
    END IF;
    UPDATE __schema__.cron_fires SET job_id = v_job.id WHERE name = p_name AND fire_at = p_fire_at;
    UPDATE __schema__.cron_jobs SET last_enqueued_at = p_fire_at WHERE name = p_name;
    RETURN NEXT v_job;
END
$$;
