"""Reading the jobs table the way the invariants need it."""

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


_COLUMNS = (
    "id, queue, priority, enqueue_shard, lane_seq, ordering_key, state::text, run_lease, "
    "attempt, max_attempts, kind, run_at, heartbeat_at, deadline_at, finalized_at"
)


def read_jobs(conn: psycopg.Connection, schema: str = "awa") -> dict[int, JobRow]:
    """Every job row, keyed by id, read in one committed snapshot."""
    rows = conn.execute(
        sql.SQL("SELECT " + _COLUMNS + " FROM {} ORDER BY id").format(sql.Identifier(schema, "jobs"))
    ).fetchall()
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
    rows = conn.execute(
        sql.SQL("SELECT queue, priority, enqueue_shard, next_seq FROM {}").format(sql.Identifier(schema, "enqueue_heads"))
    ).fetchall()
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
