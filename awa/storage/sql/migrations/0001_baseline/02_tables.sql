-- Queue storage: queues, lane heads, jobs, dead-letter entries.
--
-- A lane is (queue, priority, enqueue_shard). Batch producers (COPY) take
-- sequence ranges from the lane's enqueue head with a row-locking upsert; the
-- lock lives until the producer commits, so a later committer always gets
-- larger numbers. A single insert takes no lock and no number: it leaves a
-- lane_pending row, and whoever next holds the enqueue head numbers the
-- committed pending rows first (ADR 0028). Claimers serialise per lane on a
-- separate claim head row.
--
-- Available jobs are found through lane segments, not through an index on
-- the jobs table: a segment says "lane numbers first_seq..last_seq are the
-- jobs with ids first_id..first_id + (last_seq - first_seq)". One segment row
-- per lane per batch replaces one index entry per job, so an enqueue touches
-- only the primary key, always at its right edge, however many queues the
-- batch is routed to.

CREATE TYPE __schema__.job_state AS ENUM (
    'scheduled', 'available', 'running', 'completed', 'retryable', 'failed', 'cancelled'
);

CREATE TABLE __schema__.queues (
    name           text        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    enqueue_shards smallint    NOT NULL DEFAULT 1 CHECK (enqueue_shards BETWEEN 1 AND 64),
    paused         boolean     NOT NULL DEFAULT false,
    dlq_enabled    boolean     NOT NULL DEFAULT false,
    -- Single inserts may take the one-statement path: the queue is known to
    -- be outside every registered logical queue (17_insert_fast.sql, ADR 0040).
    fast_inserts   boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Ranges of the hot tables' columns, as domains rather than table CHECK
-- constraints (ADR 0034): PostgreSQL reads a table's CHECK expressions back
-- from their stored text in every INSERT or UPDATE statement, which cost a
-- single insert about a tenth of its server time; a domain's check is kept
-- parsed in the type cache. Clients see the base type.
CREATE DOMAIN __schema__.job_priority AS smallint CHECK (VALUE BETWEEN 1 AND 4);
CREATE DOMAIN __schema__.job_max_attempts AS smallint CHECK (VALUE BETWEEN 1 AND 1000);
CREATE DOMAIN __schema__.job_enqueue_shard AS smallint CHECK (VALUE BETWEEN 0 AND 63);
CREATE DOMAIN __schema__.lane_count AS bigint CHECK (VALUE >= 0);

-- next_seq is the next number the lane hands out; numbers start at 1.
CREATE TABLE __schema__.enqueue_heads (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    next_seq      bigint   NOT NULL DEFAULT 1,
    PRIMARY KEY (queue, priority, enqueue_shard)
);

-- claim_seq: every available job of the lane has lane_seq > claim_seq.
-- holes: numbers above claim_seq whose job left the lane without a claim
-- (admin cancel). Available jobs of a lane = next_seq - 1 - claim_seq - holes.
CREATE TABLE __schema__.claim_heads (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    claim_seq     bigint   NOT NULL DEFAULT 0,
    holes         __schema__.lane_count NOT NULL DEFAULT 0,
    -- the smallest unlifted repartition fence of the lane (16_repartition.sql):
    -- claims hand out numbers up to it only; NULL = no fence
    fence_seq     bigint,
    PRIMARY KEY (queue, priority, enqueue_shard)
);

-- Lane numbers first_seq..last_seq belong to the jobs with consecutive ids
-- starting at first_id. Deleted once the claim cursor has passed last_seq.
CREATE TABLE __schema__.lane_segments (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    first_seq     bigint   NOT NULL,
    last_seq      bigint   NOT NULL,
    first_id      bigint   NOT NULL,
    CHECK (last_seq >= first_seq),
    PRIMARY KEY (queue, priority, enqueue_shard, first_seq)
);

-- Single inserts not numbered yet (ADR 0028). pending_id comes from a
-- sequence without cache, so it increases in time: a transaction that
-- committed before another inserted has the smaller ids. The sequencer
-- (sequence_lanes, 03_lanes.sql) numbers a lane's committed rows in
-- pending_id order and deletes them.
CREATE SEQUENCE __schema__.lane_pending_ids AS bigint CACHE 1;

CREATE TABLE __schema__.lane_pending (
    queue         text     NOT NULL,
    priority      smallint NOT NULL,
    enqueue_shard smallint NOT NULL,
    pending_id    bigint   NOT NULL,
    job_id        bigint   NOT NULL,
    PRIMARY KEY (queue, priority, enqueue_shard, pending_id)
);

-- Fixed-width columns first to keep rows free of alignment padding.
-- errors / tags / metadata / progress are NULL when empty (cheaper rows).
CREATE TABLE __schema__.jobs (
    -- CACHE: each session takes ids in blocks, so a batch gets long runs of
    -- consecutive ids (few lane segments) without touching the shared
    -- sequence per row. Ids are unique, not globally ordered.
    id            bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 1000) PRIMARY KEY,
    run_lease     bigint      NOT NULL DEFAULT 0,
    lane_seq      bigint,
    run_at        timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempted_at  timestamptz,
    heartbeat_at  timestamptz,
    deadline_at   timestamptz,
    finalized_at  timestamptz,
    state         __schema__.job_state NOT NULL DEFAULT 'available',
    priority      __schema__.job_priority NOT NULL DEFAULT 2,
    max_attempts  __schema__.job_max_attempts NOT NULL DEFAULT 25,
    attempt       smallint    NOT NULL DEFAULT 0,
    enqueue_shard __schema__.job_enqueue_shard NOT NULL DEFAULT 0,
    kind          text        NOT NULL,
    queue         text        NOT NULL,
    ordering_key  bytea,
    args          jsonb       NOT NULL,
    errors        jsonb,
    tags          text[],
    metadata      jsonb,
    progress      jsonb,
    -- per-key concurrency (15_key_concurrency.sql): NULL = none given
    concurrency_key bytea,
    -- unique jobs (12_unique.sql): awa's 16-byte key and its bit(8) state mask
    unique_key    bytea,
    unique_states bit(8),
    -- per-key concurrency (15_key_concurrency.sql): the key this attempt was
    -- granted under its queue's policy, set by the claim (NULL: not
    -- governed). A running row with one is the grant (ADR 0030).
    granted_key   bytea
    -- An available job has a lane_seq, or a lane_pending row until it is
    -- numbered (ADR 0028).
);

-- No secondary index covers available jobs: enqueue writes the heap and the
-- primary key only. The indexes below are entered when a job changes state.
CREATE INDEX jobs_deferred_run_at
    ON __schema__.jobs (run_at)
    WHERE state IN ('scheduled', 'retryable');

CREATE INDEX jobs_running_heartbeat
    ON __schema__.jobs (heartbeat_at)
    WHERE state = 'running';

CREATE INDEX jobs_running_deadline
    ON __schema__.jobs (deadline_at)
    WHERE state = 'running' AND deadline_at IS NOT NULL;

CREATE INDEX jobs_terminal
    ON __schema__.jobs (queue, state, finalized_at)
    WHERE state IN ('completed', 'failed', 'cancelled');

-- Dead-letter entries keep the failed job's snapshot, off every claim path.
CREATE TABLE __schema__.dlq_entries (
    LIKE __schema__.jobs INCLUDING DEFAULTS,
    reason text        NOT NULL,
    dlq_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);

CREATE INDEX dlq_entries_queue ON __schema__.dlq_entries (queue, dlq_at);
