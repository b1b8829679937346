"""Routing state machine: the PartitionedQueueRouting spec replayed on PostgreSQL.

Spec action ``Enqueue(h)`` is executed for real, through the public client
API (``insert`` and ``insert_many_copy`` with per-job ``opts``), on a
migrated database. After every step the whole ``jobs`` table is read back and
the spec's invariants are checked against it, with an oracle that does not
share code with the implementation (``reference.py``):

=============================  =============================================
spec                           check here
=============================  =============================================
RowsFollowRouting              ``check_rows_follow_routing``
SameKeySamePartition           ``check_same_key_same_partition``
SameKeySameShard               ``check_same_key_same_shard``
SeqUniqueWithinPartitionShard  ``check_seq_unique_within_lane``
LaneCounterMatchesRows         ``check_lane_sequences`` (also: commit order)
PartitionShardCoverage         ``check_partition_shard_coverage``
(conservation)                 ``check_jobs_conserved``
=============================  =============================================

The routing scheme is a class attribute so the same machine runs with the
correlated design, where the coverage invariant must fail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from awa.routing import AWA_COMPAT, PartitionedQueue, RoutingScheme
from tests.machines import reference
from tests.machines._db import JobRow, read_enqueue_heads, read_jobs, read_queue_shards
from tests.machines._support import bind_machine, reset_database, user_tables
from tests.machines.coverage import missing_cells


class InvariantViolation(AssertionError):
    """A spec invariant failed on the database; carries the steps that led there."""

    def __init__(self, invariant_name: str, detail: str, steps: list[str]) -> None:
        self.invariant_name = invariant_name
        self.detail = detail
        self.steps = list(steps)
        super().__init__(f"{invariant_name} violated: {detail}\nsteps:\n  " + "\n  ".join(self.steps))


# --- strategies ---------------------------------------------------------------

# A small pool makes repeated keys common (SameKey* need repeats); fresh keys
# cover bytes, str, non-ASCII, NUL bytes and the empty key.
KEY_POOL: list[bytes | str] = [b"", "", "a", b"a", "user-42", "é", "🙂", b"\x00", b"\xff\x00k", "k1", "k2", "日本"]
keys = st.one_of(
    st.sampled_from(KEY_POOL),
    st.binary(max_size=6),
    st.text(max_size=4),
    st.text(st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=1, max_size=3),
)
optional_keys = st.one_of(st.none(), keys)
# sampled_from (not one_of) so shrinking walks down to the smallest widths.
partition_widths = st.sampled_from([*range(1, 17), 64, 200])
shard_widths = st.sampled_from([*range(1, 17), 32, 64])
priorities = st.integers(1, 4)
SHARDED_PARTITIONS = 16
OPT_STYLES = ("inherit", "route", "route_keyless", "queue_only", "key_only")


@dataclass
class QueueDef:
    pq: PartitionedQueue
    shards: list[int]  # enqueue_shards of each physical queue, by partition


@dataclass
class ModelJob:
    id: int
    queue: str
    priority: int
    key: bytes | None
    routed: tuple[str, bytes] | None  # (logical queue, key) when routed by key
    order: int  # position in the global insertion (= commit) order


def _key_bytes(key: bytes | str | None) -> bytes | None:
    return None if key is None else reference.key_bytes(key)


@dataclass
class _Returned:
    id: int


class RoutingMachine(RuleBasedStateMachine):
    """Set ``database_url`` and ``scheme`` on a subclass (see ``routing_machine_class``)."""

    database_url: str = ""
    scheme: RoutingScheme = AWA_COMPAT
    queues = Bundle("queues")

    def __init__(self) -> None:
        super().__init__()
        from awa.client import Client

        self.conn = self.check_conn  # shared by every example of one test (see bind_machine)
        reset_database(self.conn, self._tables())
        self.client = Client(self.client_conn)  # fresh client: no shard cache from earlier examples
        self.defs: list[QueueDef] = []
        self.shards_of: dict[str, int] = {}
        self.jobs: dict[int, ModelJob] = {}
        self.steps: list[str] = []
        self.order = 0
        self.logical_counter = 0

    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _table_cache: dict[str, list[str]] = {}

    def _tables(self) -> list[str]:
        cached = self._table_cache.get(self.database_url)
        if cached is None:
            cached = self._table_cache[self.database_url] = user_tables(self.conn)
        return cached

    # --- expected routing (the oracle) -----------------------------------------

    def expected_partition(self, key: bytes, partitions: int) -> int:
        if self.scheme.name == "correlated":
            return reference.correlated_partition_of(key, partitions)
        if self.scheme.name == "awa-compat":
            return reference.partition_of(key, partitions)
        # xxh3 has no second implementation here: use the scheme itself.
        return self.scheme.partition_for_key(key, partitions)

    def expected_shard(self, key: bytes, shards: int) -> int:
        # Enqueue shards are awa's base hash in every scheme the client uses (ADR-025).
        return reference.shard_of(key, shards)

    # --- rules (spec action Enqueue, plus the configuration the spec fixes) ----

    @initialize(target=queues, partitions=partition_widths, plan=st.lists(shard_widths, min_size=1, max_size=3))
    def first_queue(self, partitions: int, plan: list[int]) -> QueueDef:
        return self.define_queue(partitions, plan)

    @precondition(lambda self: len(self.defs) < 3)
    @rule(target=queues, partitions=partition_widths, plan=st.lists(shard_widths, min_size=1, max_size=3))
    def another_queue(self, partitions: int, plan: list[int]) -> QueueDef:
        return self.define_queue(partitions, plan)

    def define_queue(self, partitions: int, plan: list[int]) -> QueueDef:
        self.logical_counter += 1
        logical = f"lq{self.logical_counter}"
        self.steps.append(f"define_queue(partitions={partitions}, shard_plan={plan})")
        pq = PartitionedQueue(logical, partitions, scheme=self.scheme)
        assert pq.physical_queues == [reference.physical_queue_name(logical, i) for i in range(partitions)]
        # Each physical queue gets its own width from the plan (cycled). Past
        # partition 16 widths stay 1: one set_enqueue_shards round trip per
        # queue would dominate the run, and 16 sharded partitions already give
        # the coverage check up to a thousand cells.
        shards = [plan[i % len(plan)] if i < SHARDED_PARTITIONS else 1 for i in range(partitions)]
        qdef = QueueDef(pq, shards)
        # Coverage is constant-level (TLC checks it before the first state):
        # judge the configuration before paying for its database set-up.
        self.check_partition_shard_coverage([qdef])
        for name, width in zip(pq.physical_queues, shards):
            if width != 1:
                self.client.set_enqueue_shards(name, width)
            self.shards_of[name] = width
        self.defs.append(qdef)
        return qdef

    def _record(self, job: Any, queue: str, priority: int, key: bytes | None, routed: tuple[str, bytes] | None) -> None:
        assert job.id not in self.jobs, f"job id {job.id} handed out twice"
        self.jobs[job.id] = ModelJob(job.id, queue, priority, key, routed, self.order)
        self.order += 1

    @rule(qdef=queues, key=optional_keys, priority=priorities, index=st.integers(0, 10_000))
    def insert_one(self, qdef: QueueDef, key: bytes | str | None, priority: int, index: int) -> None:
        """One job: routed by key (route_by_key) or, without a key, round robin."""
        self.steps.append(f"insert_one(queue={qdef.pq.logical_queue}, key={key!r}, priority={priority}, index={index})")
        if key is None:
            queue = qdef.pq.queue_for_index(index)
            job = self.client.insert({"i": index}, kind="routing", queue=queue, priority=priority)
            self._record(job, queue, priority, None, None)
        else:
            route = qdef.pq.route_by_key(key)
            job = self.client.insert({"i": index}, kind="routing", priority=priority, **route)
            kb = _key_bytes(key)
            self._record(job, route["queue"], priority, kb, (qdef.pq.logical_queue, kb))

    @rule(
        data=st.data(),
        default_key=optional_keys,
        priority=priorities,
        size=st.integers(1, 12),
        returning=st.booleans(),
    )
    def copy_batch(
        self, data: st.DataObject, default_key: bytes | str | None, priority: int, size: int, returning: bool
    ) -> None:
        """A COPY batch with batch defaults and mixed per-job opts (tri-state key)."""
        default_def = data.draw(st.sampled_from(self.defs), label="default_queue_of")
        default_queue = default_def.pq.physical_queues[0]
        opts: list[dict[str, Any] | None] = []
        expected: list[tuple[str, bytes | None, tuple[str, bytes] | None]] = []
        described: list[str] = []
        for i in range(size):
            style = data.draw(st.sampled_from(OPT_STYLES), label=f"style[{i}]")
            qdef = data.draw(st.sampled_from(self.defs), label=f"queue_of[{i}]")
            if style == "inherit":
                opts.append(None)
                expected.append((default_queue, _key_bytes(default_key), None))
                described.append("None")
            elif style == "route":
                key = data.draw(keys, label=f"key[{i}]")
                queue = qdef.pq.queue_for_key(key)
                opts.append({"queue": queue, "ordering_key": key})
                kb = _key_bytes(key)
                expected.append((queue, kb, (qdef.pq.logical_queue, kb)))
                described.append(f"route({qdef.pq.logical_queue}, {key!r})")
            elif style == "route_keyless":
                queue = qdef.pq.queue_for_index(i)
                opts.append({"queue": queue, "ordering_key": None})
                expected.append((queue, None, None))
                described.append(f"{{queue: {queue}, ordering_key: None}}")
            elif style == "queue_only":
                queue = qdef.pq.queue_for_index(i + 1)
                opts.append({"queue": queue})
                expected.append((queue, _key_bytes(default_key), None))
                described.append(f"{{queue: {queue}}}")
            else:  # key_only: the default queue, a per-job key
                key = data.draw(optional_keys, label=f"key[{i}]")
                opts.append({"ordering_key": key})
                expected.append((default_queue, _key_bytes(key), None))
                described.append(f"{{ordering_key: {key!r}}}")
        self.steps.append(
            f"{'insert_many_copy' if returning else 'enqueue_many_copy'}(queue={default_queue}, ordering_key={default_key!r}, priority={priority}, "
            f"opts=[{', '.join(described)}])"
        )
        batch = dict(kind="routing", queue=default_queue, ordering_key=default_key, priority=priority, opts=opts)
        if returning:
            jobs = self.client.insert_many_copy([{"i": i} for i in range(size)], **batch)
            assert len(jobs) == size
        else:
            # Count-only COPY: find the new rows by their args (input index).
            newest = max(self.jobs, default=0)
            count = self.client.enqueue_many_copy([{"i": i} for i in range(size)], **batch)
            assert count == size, (count, size)
            by_index = dict(
                self.conn.execute(
                    "SELECT (args->>'i')::int, id FROM awa.jobs WHERE id > %s AND kind = 'routing' ORDER BY id",
                    [newest],
                ).fetchall()
            )
            assert sorted(by_index) == list(range(size)), by_index
            jobs = [_Returned(by_index[i]) for i in range(size)]
        for job, (queue, key, routed) in zip(jobs, expected):
            self._record(job, queue, priority, key, routed)

    # --- invariants -----------------------------------------------------------------

    def _violation(self, name: str, detail: str) -> InvariantViolation:
        return InvariantViolation(name, detail, self.steps)

    @invariant()
    def spec_invariants(self) -> None:
        rows = read_jobs(self.conn)
        self.check_jobs_conserved(rows)
        self.check_rows_follow_routing(rows)
        self.check_same_key_same_partition(rows)
        self.check_same_key_same_shard(rows)
        self.check_seq_unique_within_lane(rows)
        self.check_lane_sequences(rows)
        self.check_partition_shard_coverage()

    def check_jobs_conserved(self, rows: dict[int, JobRow]) -> None:
        if set(rows) != set(self.jobs):
            lost = sorted(set(self.jobs) - set(rows))
            extra = sorted(set(rows) - set(self.jobs))
            raise self._violation("JobsConserved", f"lost ids {lost[:5]}, unexpected ids {extra[:5]}")
        for job_id, want in self.jobs.items():
            row = rows[job_id]
            got = (row.queue, row.priority, row.ordering_key, row.state, row.kind)
            exp = (want.queue, want.priority, want.key, "available", "routing")
            if got != exp:
                raise self._violation("JobsConserved", f"job {job_id}: database {got}, model {exp}")

    def check_rows_follow_routing(self, rows: dict[int, JobRow]) -> None:
        db_shards = read_queue_shards(self.conn)
        for name, width in self.shards_of.items():
            if db_shards.get(name, 1) != width:
                raise self._violation("RowsFollowRouting", f"queue {name}: enqueue_shards {db_shards.get(name)} != {width}")
        by_logical = {d.pq.logical_queue: d for d in self.defs}
        for job_id, want in self.jobs.items():
            row = rows[job_id]
            width = self.shards_of.get(row.queue, 1)
            if want.key is not None:
                shard = self.expected_shard(want.key, width)
                if row.enqueue_shard != shard:
                    raise self._violation(
                        "RowsFollowRouting",
                        f"job {job_id} key {want.key!r} in {row.queue} (width {width}): shard {row.enqueue_shard}, spec {shard}",
                    )
            elif not 0 <= row.enqueue_shard < width:
                raise self._violation("RowsFollowRouting", f"job {job_id}: unkeyed shard {row.enqueue_shard} outside 0..{width - 1}")
            if want.routed is not None:
                logical, key = want.routed
                qdef = by_logical[logical]
                p = self.expected_partition(key, qdef.pq.partitions)
                if row.queue != reference.physical_queue_name(logical, p):
                    raise self._violation(
                        "RowsFollowRouting", f"job {job_id} key {key!r}: queue {row.queue}, spec partition {p}"
                    )
        self.check_sql_routing(by_logical)

    def check_sql_routing(self, by_logical: dict[str, QueueDef]) -> None:
        """SQL producers route like the client: ``partition_for_ordering_key`` of every routed key."""
        if self.scheme.name != "awa-compat":
            return  # the SQL functions implement awa-compat only
        routed = [(key, by_logical[logical].pq.partitions) for logical, key in
                  {j.routed for j in self.jobs.values() if j.routed is not None}]
        if not routed:
            return
        got = self.conn.execute(
            "SELECT awa.partition_for_ordering_key(k, n) FROM unnest(%s::bytea[], %s::integer[]) WITH ORDINALITY AS u(k, n, o) "
            "ORDER BY o",
            ([k for k, _ in routed], [n for _, n in routed])).fetchall()
        for (key, n), (p,) in zip(routed, got):
            if p != self.expected_partition(key, n):
                raise self._violation("RowsFollowRouting",
                                      f"key {key!r}: SQL partition {p} of {n}, spec {self.expected_partition(key, n)}")

    def check_same_key_same_partition(self, rows: dict[int, JobRow]) -> None:
        seen: dict[tuple[str, bytes], str] = {}
        for job_id, want in self.jobs.items():
            if want.routed is None:
                continue
            queue = rows[job_id].queue
            first = seen.setdefault(want.routed, queue)
            if first != queue:
                raise self._violation("SameKeySamePartition", f"key {want.routed} in {first} and {queue}")

    def check_same_key_same_shard(self, rows: dict[int, JobRow]) -> None:
        seen: dict[tuple[str, bytes], int] = {}
        for row in rows.values():
            if row.ordering_key is None:
                continue
            first = seen.setdefault((row.queue, row.ordering_key), row.enqueue_shard)
            if first != row.enqueue_shard:
                raise self._violation(
                    "SameKeySameShard", f"key {row.ordering_key!r} in {row.queue}: shards {first} and {row.enqueue_shard}"
                )

    def check_seq_unique_within_lane(self, rows: dict[int, JobRow]) -> None:
        seen: dict[tuple[str, int, int, int], int] = {}
        for row in rows.values():
            if row.lane_seq is None:
                raise self._violation("SeqUniqueWithinPartitionShard", f"available job {row.id} has no lane_seq")
            other = seen.setdefault((*row.lane, row.lane_seq), row.id)
            if other != row.id:
                raise self._violation(
                    "SeqUniqueWithinPartitionShard", f"jobs {other} and {row.id} share lane {row.lane} seq {row.lane_seq}"
                )

    def check_lane_sequences(self, rows: dict[int, JobRow]) -> None:
        """Lane numbers follow commit order and the head points just past them.

        One connection, no rollbacks: each lane holds exactly 1..n, increasing
        in the order the client returned the jobs (commit order, and input order
        inside a COPY), and the lane head's next_seq is n + 1.
        """
        per_lane: dict[tuple[str, int, int], list[tuple[int, int]]] = defaultdict(list)
        for job_id, want in self.jobs.items():
            row = rows[job_id]
            per_lane[row.lane].append((want.order, row.lane_seq))
        heads = read_enqueue_heads(self.conn)
        for lane, items in per_lane.items():
            items.sort()
            seqs = [s for _, s in items]
            if seqs != list(range(1, len(seqs) + 1)):
                raise self._violation("CommitOrderedLaneSeq", f"lane {lane}: seqs in commit order {seqs[:12]}")
            if heads.get(lane) != len(seqs) + 1:
                raise self._violation(
                    "LaneCounterMatchesRows", f"lane {lane}: head next_seq {heads.get(lane)} with {len(seqs)} rows"
                )

    def check_partition_shard_coverage(self, defs: list[QueueDef] | None = None) -> None:
        for qdef in self.defs if defs is None else defs:
            missing = coverage_gaps(self.scheme, qdef.pq.partitions, tuple(qdef.shards))
            if missing:
                sample = dict(list(missing.items())[:4])
                raise self._violation(
                    "PartitionShardCoverage",
                    f"{qdef.pq.logical_queue} ({qdef.pq.partitions} partitions, shard widths {sorted(set(qdef.shards))}): "
                    f"partition -> unreachable shards {sample}",
                )


_coverage_cache: dict[tuple[str, int, tuple[int, ...]], dict[int, list[int]]] = {}


def _partitions_for_hashes(scheme: RoutingScheme):
    """Vectorised partition of base hashes for the scheme (probe keys only)."""
    if scheme.name == "awa-compat":
        return lambda h, n: reference.finalize_array(h) % np.uint64(n) if n > 1 else np.zeros_like(h)
    if scheme.name == "correlated":
        return lambda h, n: h % np.uint64(n) if n > 1 else np.zeros_like(h)
    raise NotImplementedError(f"coverage probe has no vectorised form for scheme {scheme.name}")


def coverage_gaps(scheme: RoutingScheme, partitions: int, shards: tuple[int, ...]) -> dict[int, list[int]]:
    key = (scheme.name, partitions, shards)
    if key not in _coverage_cache:
        _coverage_cache[key] = missing_cells(_partitions_for_hashes(scheme), partitions, shards)
    return _coverage_cache[key]


def routing_machine_class(database_url: str, scheme: RoutingScheme = AWA_COMPAT) -> type[RoutingMachine]:
    """A machine bound to one database and one routing scheme (close with ``close_machine``)."""
    return bind_machine(RoutingMachine, database_url, scheme=scheme, name=f"RoutingMachine_{scheme.name.replace('-', '_')}")
