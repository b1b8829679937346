"""One lane's backlog must not make other lanes' lookups scan it.

The lane tables are read one lane at a time, and the lane reaches the
planner as a parameter or a join column. When one lane holds most of a
table and ANALYZE has seen it, the planner takes any lane to match most
rows and picks a sequential scan (for an EXISTS, "the first row will do"),
so every claim or insert for another lane reads the whole backlog.
``lane_pending`` and ``lane_segments`` declare their ``queue`` column highly
distinct (08_retention.sql), which keeps these lookups on the primary key
whatever ANALYZE saw. ``key_parked`` is checked too: a hot key's parked rows
in one lane.

The check reads the claiming backend's own table statistics (tuples read by
sequential scans), flushed with ``pg_stat_force_next_flush``; no timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from awa.client import Client

BACKLOG = 20_000  # rows of one lane: reading them all costs more than any per-lane lookup
PARKED = 6_000  # parked jobs of one key (the claims that park them take a while)


def _seq_tuples_read(conn: psycopg.Connection, table: str) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")  # flushed when the backend goes idle
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relid = %s::regclass",
        (f"awa.{table}",)).fetchone()
    return int(row[0])


def _rows_scanned(conn: psycopg.Connection, table: str, queue: str, enqueue: Callable[[Client, int], Any]) -> int:
    """Rows of ``table`` that ``conn``'s backend read by sequential scans over
    20 rounds of one ``enqueue`` into ``queue`` and a claim of it (after a
    first round that creates the queue's lane)."""
    client = Client(conn)
    enqueue(client, 0)
    client.claim([queue], 10)
    before = _seq_tuples_read(conn, table)
    for i in range(1, 21):
        enqueue(client, i)
        assert len(client.claim([queue], 10)) == 1
    return _seq_tuples_read(conn, table) - before


def _parked(client: Client) -> int:
    with client.connection() as conn:
        return conn.execute("SELECT count(*) FROM awa.key_parked").fetchone()[0]


def test_claims_and_inserts_elsewhere_do_not_scan_a_pending_backlog(database_url):
    with Client(database_url) as producer:
        producer.insert({"n": 0}, kind="k", queue="backlog")  # the lane's head
    with psycopg.connect(database_url, autocommit=True) as setup:
        # What a day of single inserts into a queue nobody claims from leaves
        # (written here in one statement: the same rows insert_job writes).
        setup.execute(
            "WITH j AS (INSERT INTO awa.jobs (queue, kind, args) "
            "SELECT 'backlog', 'k', '{}' FROM generate_series(1, %s) RETURNING id) "
            "INSERT INTO awa.lane_pending (queue, priority, enqueue_shard, pending_id, job_id) "
            "SELECT 'backlog', 2, 0, nextval('awa.lane_pending_ids'), id FROM j", (BACKLOG - 1,))
        assert setup.execute("SELECT count(*) FROM awa.lane_pending").fetchone()[0] == BACKLOG
        setup.execute("ANALYZE awa.lane_pending")
    with psycopg.connect(database_url, autocommit=True) as conn:
        read = _rows_scanned(conn, "lane_pending", "busy", lambda c, i: c.insert({"n": i}, kind="k", queue="busy"))
    # One scan of the backlog would read BACKLOG rows; these lookups none.
    assert read < BACKLOG, f"claims and inserts of another queue read {read} rows of lane_pending by scans"


def test_claims_elsewhere_do_not_scan_a_segment_backlog(database_url):
    with Client(database_url) as producer:
        producer.enqueue_many_copy([{"n": 0}], kind="k", queue="backlog")  # the lane's head, number 1
    with psycopg.connect(database_url, autocommit=True) as setup:
        # What many small COPY batches into a queue nobody claims from leave:
        # one segment per batch (written here in one statement).
        setup.execute(
            "WITH j AS (INSERT INTO awa.jobs (queue, kind, args, lane_seq) "
            "SELECT 'backlog', 'k', '{}', n FROM generate_series(2, %s) AS n RETURNING id, lane_seq) "
            "INSERT INTO awa.lane_segments (queue, priority, enqueue_shard, first_seq, last_seq, first_id) "
            "SELECT 'backlog', 2, 0, lane_seq, lane_seq, id FROM j", (BACKLOG,))
        setup.execute("UPDATE awa.enqueue_heads SET next_seq = %s WHERE queue = 'backlog'", (BACKLOG + 1,))
        setup.execute("ANALYZE awa.lane_segments")
    with psycopg.connect(database_url, autocommit=True) as conn:
        read = _rows_scanned(conn, "lane_segments", "busy",
                             lambda c, i: c.enqueue_many_copy([{"n": i}], kind="k", queue="busy"))
        assert Client(conn).queue_stats("backlog")[0].available == BACKLOG
    assert read < BACKLOG, f"claims and COPY batches of another queue read {read} rows of lane_segments by scans"


def test_keyed_claims_elsewhere_do_not_scan_a_parked_backlog(database_url):
    with Client(database_url) as client:
        for queue in ("hot", "cold"):
            client.create_key_policy(queue, 1, from_ordering_key=True)
        # One key's surplus in one lane: each claim takes nothing past the
        # running job and parks what it examined (up to its window).
        for lo in range(0, PARKED, 2000):
            client.enqueue_many_copy([{"n": i} for i in range(lo, lo + 2000)], kind="k", queue="hot",
                                     ordering_key="h")
        assert len(client.claim(["hot"], 10)) == 1
        while len(client.claim(["hot"], 10)) == 0 and _parked(client) < PARKED - 1:
            pass
    with psycopg.connect(database_url, autocommit=True) as setup:
        assert setup.execute("SELECT count(*) FROM awa.key_parked").fetchone()[0] == PARKED - 1
        setup.execute("ANALYZE awa.key_parked")
    with psycopg.connect(database_url, autocommit=True) as conn:
        read = _rows_scanned(conn, "key_parked", "cold", lambda c, i: c.enqueue_many_copy(
            [{"n": i}], kind="k", queue="cold", ordering_key=f"c{i}"))
    assert read < PARKED, f"keyed claims of another queue read {read} rows of key_parked by scans"
