-- Maintenance leadership as a lease row (ADR 0019).
--
-- One row per role (today only 'maintenance'). The holder renews expires_at
-- well before it passes; anyone may take the row over once it has passed.
-- Both are decided by the database's clock in one statement, so a holder
-- that is frozen (SIGSTOP, a stuck event loop, a long pause) loses the role
-- after at most one lease, whatever its idle connection still looks like.
CREATE TABLE __schema__.leader_leases (
    role        text        PRIMARY KEY CHECK (length(role) BETWEEN 1 AND 100),
    holder      text        NOT NULL CHECK (length(holder) BETWEEN 1 AND 200),
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL,
    term        bigint      NOT NULL DEFAULT 1  -- bumped on every change of holder
);

-- Take or renew the lease: true when p_holder holds it until now() + p_ttl.
-- A live lease of another holder is left alone (false).
CREATE FUNCTION __schema__.acquire_leader_lease(p_role text, p_holder text, p_ttl interval)
RETURNS boolean LANGUAGE sql AS $$
    WITH taken AS (
        INSERT INTO __schema__.leader_leases AS l (role, holder, expires_at, acquired_at)
        VALUES (p_role, p_holder, clock_timestamp() + p_ttl, clock_timestamp())
        ON CONFLICT (role) DO UPDATE
        SET holder = excluded.holder,
            expires_at = excluded.expires_at,
            acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END,
            term = CASE WHEN l.holder = excluded.holder THEN l.term ELSE l.term + 1 END
        WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM taken)
$$;

-- Give the lease up (shutdown): the next candidate need not wait for expiry.
CREATE FUNCTION __schema__.release_leader_lease(p_role text, p_holder text)
RETURNS boolean LANGUAGE sql AS $$
    WITH gone AS (
        UPDATE __schema__.leader_leases SET expires_at = clock_timestamp()
        WHERE role = p_role AND holder = p_holder AND expires_at > clock_timestamp()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM gone)
$$;
