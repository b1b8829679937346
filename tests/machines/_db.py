"""Reading the jobs table the way the invariants need it.

A single insert is numbered lazily (ADR 0028): until a claimer or a COPY
sequences its lane, a committed job has ``lane_seq`` NULL and a
``lane_pending`` row. The readers here apply the refinement mapping of
``specs/ProducersLazy.tla`` to the specs that number at insert time: such a
job carries the number the next sequencing gives it (the lane's ``next_seq``
plus its rank among the lane's committed pending jobs in ``pending_id``
order), and a lane's head counts those numbers as taken. Sequencing then
changes nothing these readers return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class JobRow:
    id: int
    queue: str
    priority: int
    enqueue_shard: int
    lane_seq: int | None
    ordering_key: bytes | None
    state: str
    run_lease: int
    attempt: int
    max_attempts: int
    kind: str
    run_at: datetime
    heartbeat_at: datetime | None
    deadline_at: datetime | None
    finalized_at: datetime | None

    @property
    def lane(self) -> tuple[str, int, int]:
        return (self.queue, self.priority, self.enqueue_shard)


# j: the job, n: its pending row ranked (_PENDING), h: its lane's head.
_COLUMNS = (
    "j.id, j.queue, j.priority, j.enqueue_shard, coalesce(j.lane_seq, h.next_seq - 1 + n.rank), j.ordering_key, "
    "j.state::text, j.run_lease, j.attempt, j.max_attempts, j.kind, j.run_at, j.heartbeat_at, j.deadline_at, "
    "j.finalized_at"
)


# The pending jobs still to be numbered, with the number sequencing gives them.
_PENDING = """
    SELECT p.job_id, p.queue, p.priority, p.enqueue_shard,
           row_number() OVER (PARTITION BY p.queue, p.priority, p.enqueue_shard ORDER BY p.pending_id) AS rank
    FROM {pending} AS p JOIN {jobs} AS w ON w.id = p.job_id AND w.state = 'available' AND w.lane_seq IS NULL
"""


def _tables(schema: str) -> dict[str, sql.Identifier]:
    return {name: sql.Identifier(schema, table)
            for name, table in (("jobs", "jobs"), ("pending", "lane_pending"), ("heads", "enqueue_heads"))}


def read_jobs(conn: psycopg.Connection, schema: str = "awa") -> dict[int, JobRow]:
    """Every job row, keyed by id, read in one committed snapshot (pending jobs mapped)."""
    query = sql.SQL(
        "SELECT " + _COLUMNS + " FROM {jobs} AS j"
        " LEFT JOIN (" + _PENDING + ") AS n ON n.job_id = j.id"
        " LEFT JOIN {heads} AS h ON h.queue = n.queue AND h.priority = n.priority"
        " AND h.enqueue_shard = n.enqueue_shard ORDER BY j.id"
    ).format(**_tables(schema))
    rows = conn.execute(query).fetchall()
    if not conn.autocommit:
        conn.commit()
    return {
        r[0]: JobRow(
            id=r[0], queue=r[1], priority=r[2], enqueue_shard=r[3], lane_seq=r[4],
            ordering_key=bytes(r[5]) if r[5] is not None else None, state=r[6], run_lease=r[7],
            attempt=r[8], max_attempts=r[9], kind=r[10], run_at=r[11], heartbeat_at=r[12],
            deadline_at=r[13], finalized_at=r[14],
        )
        for r in rows
    }


def read_enqueue_heads(conn: psycopg.Connection, schema: str = "awa") -> dict[tuple[str, int, int], int]:
    """Each lane's next_seq, counting the numbers its pending jobs will take."""
    query = sql.SQL(
        "SELECT h.queue, h.priority, h.enqueue_shard, h.next_seq + coalesce(max(n.rank), 0) FROM {heads} AS h"
        " LEFT JOIN (" + _PENDING + ") AS n ON h.queue = n.queue AND h.priority = n.priority"
        " AND h.enqueue_shard = n.enqueue_shard GROUP BY 1, 2, 3, h.next_seq"
    ).format(**_tables(schema))
    rows = conn.execute(query).fetchall()
    if not conn.autocommit:
        conn.commit()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def read_queue_shards(conn: psycopg.Connection, schema: str = "awa") -> dict[str, int]:
    rows = conn.execute(
        sql.SQL("SELECT name, enqueue_shards FROM {}").format(sql.Identifier(schema, "queues"))
    ).fetchall()
    if not conn.autocommit:
        conn.commit()
    return {r[0]: r[1] for r in rows}
