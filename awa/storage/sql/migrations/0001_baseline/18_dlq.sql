-- awa-pg's dead-letter filters, written once: the entries of one kind, queue
-- and/or tag (NULL: any), below a keyset cursor. The cursor is awa-pg's:
-- before_id alone is id < before_id, before_at alone is dlq_at < before_at,
-- both is (dlq_at, id) < (before_at, before_id), the order list_dlq pages in.
-- A single SELECT in SQL, so the planner inlines it into each caller.
CREATE OR REPLACE FUNCTION __schema__.dlq_matching(
    p_kind      text,
    p_queue     text,
    p_tag       text,
    p_before_id bigint,
    p_before_at timestamptz
)
RETURNS SETOF __schema__.dlq_entries
LANGUAGE sql STABLE AS $$
    SELECT * FROM __schema__.dlq_entries AS e
    WHERE (p_kind IS NULL OR e.kind = p_kind)
      AND (p_queue IS NULL OR e.queue = p_queue)
      AND (p_tag IS NULL OR p_tag = ANY (e.tags))
      AND CASE
              WHEN p_before_at IS NULL THEN p_before_id IS NULL OR e.id < p_before_id
              WHEN p_before_id IS NULL THEN e.dlq_at < p_before_at
              ELSE (e.dlq_at, e.id) < (p_before_at, p_before_id)
          END
$$;
