"""Concurrent producers machine: specs/ProducersLazy.tla replayed on PostgreSQL.

Several producer connections, a COPY producer and one or two claimers work on
one logical queue (1-2 partitions, 1-2 enqueue shards each) through the public
client (:class:`awa.client.Client` on single psycopg connections, transactions
from ``client.transaction()``). Every database call of a connection runs on
that connection's own thread, one call at a time, so a call that waits for a
row lock another open transaction holds (a single insert behind another
producer's lane head today, a COPY behind the heads it needs) leaves its
connection *blocked* while the machine goes on with the others. A blocked
connection takes no rule until its call has returned.

After each call the machine waits until every connection is idle or waits
for a lock that one of its *idle* open transactions holds (pg_stat_activity
and pg_blocking_pids; a waits-for cycle is left to PostgreSQL's deadlock
check), so which calls are blocked does not depend on timing; a call that is
neither after SLOW_S seconds is treated as blocked too. The step clock that
orders "committed before inserted" counts a commit when its call returned
and an insert when it was sent: never an order that did not happen.

Rules (each draws which connection it acts on, mapped onto the idle ones it
applies to; with none, the step does nothing):

* ``begin``: a producer opens a transaction;
* ``insert``: a producer inserts one job keyed by one of a few ordering keys
  in its transaction (``tx.insert``, routed by ``route_by_key``), opening
  one first when it has none (spec ``Insert``);
* ``savepoint``: a producer sets a savepoint and inserts one keyed job after
  it (one call);
* ``rollback_to_savepoint``: it rolls back to the last savepoint; the rows
  inserted since are gone (spec ``Undo``), their lane numbers too;
* ``commit`` / ``rollback``: a producer ends its transaction;
* ``copy_insert``: the COPY producer sends a batch of 1-4 keyed jobs
  (``tx.insert_many``, the COPY path) in its transaction, opened on first
  use and left open across steps (spec ``CopyReserve``);
* ``copy_commit`` / ``copy_rollback``: it ends that transaction;
* ``claim``: a claimer claims up to 1-3 jobs (autocommit, spec ``ClaimBegin``,
  ``Sequence``, ``Take``);
* ``claim_together``: every idle claimer (two at most) claims at the same
  moment (they race for the lanes' claim heads);
* ``complete``: a claimer completes what it holds;

A deadlock between two producer transactions (two lanes locked in opposite
orders; PostgreSQL aborts one) is allowed: the victim's transaction is rolled
back and its rows count as rolled back.

Invariants, checked against the database and the claims' answers (never
against numbers the machine predicts), after every step and at teardown:

* NoCommittedJobSkipped: no job is handed out twice or without the machine
  having seen its claim; a rolled-back job is never visible nor handed out;
  every committed job whose lane number is at or below its lane's claim
  cursor has been handed out (checked while no claim is in flight).
* PerKeyFifo: job ``a`` is handed out before job ``b`` of the same lane (so
  of the same ordering key) when ``a``'s commit had returned before ``b``'s
  insert was sent, or both are in one transaction and ``a`` was inserted
  first (spec ghost ``after``). "Before": in an earlier claim call (one sent
  after the other returned) or earlier in the same call's answer. Also:
  jobs of one key all land in one lane (KeyStaysInItsLane).
* NumbersDense: in an observer's snapshot (REPEATABLE READ), per lane the
  numbered jobs (``lane_seq`` not null) together with the claimed ones carry
  exactly ``1 .. next_seq - 1``, one job each, and (no claim in flight) the
  numbers handed out are exactly ``1 .. claim_seq``. Works with ADR 0028's lazy
  numbering too: unnumbered jobs are ignored, and when ``awa.lane_pending``
  exists every available job without a number must have a pending row (without
  the table, every available job must have a number).
* EveryCommittedJobClaimed (teardown): every transaction still open is
  committed, a claimer drains the queue, and every committed job has been
  handed out exactly once (attempt 1, completed).

About 30 steps per example; the ci profile runs the whole test in well under
a minute (see the commit message for a measured run).
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from psycopg import IsolationLevel

from awa.client import Client
from awa.routing import PartitionedQueue
from tests.machines._support import machine_settings, reset_database, user_tables

pytestmark = pytest.mark.machines

LOGICAL = "prod"
KIND = "prod"
KEYS = ("k0", "k1", "k2")  # few keys: lanes shared often, so FIFO pairs and lock waits are common
# A call that has neither returned nor settled into a lock wait on an idle
# transaction of ours after this long is treated as blocked too ("slow"). A
# lock wait is recognised at once (pg_stat_activity), so this only matters
# for a loaded machine; it must exceed the deadlock timeout below.
SLOW_S = 2.0
DEADLOCK_TIMEOUT = "50ms"  # set when permitted (superuser); else PostgreSQL's 1 s
TEARDOWN_S = 60.0
WHO = st.integers(0, 5)  # which connection a rule acts on (see ProducersMachine.pick)

Lane = tuple[str, int, int]


class ProducersViolation(AssertionError):
    def __init__(self, name: str, detail: str, log: list[str]) -> None:
        self.invariant_name = name
        self.detail = detail
        super().__init__(f"{name} violated: {detail}\nlast calls:\n  " + "\n  ".join(log[-40:]))


@dataclass(frozen=True)
class Aborted:
    """A producer call that lost a deadlock; its transaction was rolled back on its thread."""

    error: str


@dataclass
class Txn:
    name: str
    rows: list[int] = field(default_factory=list)  # live rows, in insert order
    savepoint: int | None = None  # len(rows) when the savepoint was set
    status: str = "open"  # open, committing, committed, rolled_back


@dataclass
class JobRec:
    id: int
    key: str
    lane: Lane
    txn: Txn
    after: frozenset[int]  # spec ghost: must be handed out first


@dataclass
class ClaimRec:
    issued: int
    done: int = -1
    ids: list[int] = field(default_factory=list)


@dataclass
class Call:
    label: str
    fut: Future
    done: Callable[[Any], None]
    issued: int


class Worker:
    """One connection and the one thread that runs all of its calls, in order."""

    def __init__(self, name: str, url: str, *, autocommit: bool, seed: float | None = None) -> None:
        self.name = name
        self.threads = ThreadPoolExecutor(1, thread_name_prefix=f"producers-{name}")
        self.conn: psycopg.Connection = self.threads.submit(self._connect, url, autocommit, seed).result(30)
        self.pid = self.conn.info.backend_pid
        self.client = Client(self.conn)
        self.tx: Any = None  # the open SyncTransaction, touched on the thread only
        self.txn: Txn | None = None  # the machine's record of it
        self.call: Call | None = None
        self.running: list[tuple[int, int]] = []  # claimers: (job id, lease) held

    @staticmethod
    def _connect(url: str, autocommit: bool, seed: float | None) -> psycopg.Connection:
        conn = psycopg.connect(url, autocommit=autocommit)
        try:
            conn.execute(f"SET deadlock_timeout = '{DEADLOCK_TIMEOUT}'")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
        if seed is not None:  # claims order equal lanes at random()
            conn.execute("SELECT setseed(%s)", [seed])
        if not autocommit:
            conn.commit()
        return conn

    def __repr__(self) -> str:
        return self.name

    def close(self) -> None:
        if self.call is not None and not self.call.fut.done():
            self.conn.cancel()  # never leave a thread waiting for ever
        try:
            self.threads.submit(self.conn.close).result(10)
        except (FutureTimeout, psycopg.Error):
            pass
        self.threads.shutdown(wait=False, cancel_futures=True)


class ProducersMachine(RuleBasedStateMachine):
    database_url = ""
    _tables: list[str] | None = None
    counts: Counter  # over the whole run: which paths were exercised

    def __init__(self) -> None:
        super().__init__()
        self.workers: list[Worker] = []
        self.producers: list[Worker] = []
        self.claimers: list[Worker] = []
        self.copier: Worker | None = None
        self.clock = 0
        self.log: list[str] = []
        self.jobs: dict[int, JobRec] = {}
        self.committed: set[int] = set()
        self.rolled_back: set[int] = set()
        self.claims: list[ClaimRec] = []
        self.claimed_at: dict[int, tuple[int, int]] = {}  # job id -> (claim index, position)
        self.claimed_seq: dict[int, int | None] = {}
        self.key_lane: dict[str, Lane] = {}
        self.txn_count = 0
        self.broken = False
        self.started = False

    # -- set-up ----------------------------------------------------------------------

    @initialize(partitions=st.integers(1, 2), shards=st.integers(1, 2), producers=st.integers(2, 3),
                claimers=st.integers(1, 2))
    def setup(self, partitions: int, shards: int, producers: int, claimers: int) -> None:
        self.started = True
        cls = type(self)
        url = self.database_url
        with psycopg.connect(url, autocommit=True) as admin:
            if cls._tables is None:
                cls._tables = user_tables(admin)
            reset_database(admin, cls._tables, truncate=True)
            self.pq = PartitionedQueue(LOGICAL, partitions)
            setup = Client(admin)
            for queue in self.pq.physical_queues:
                setup.set_enqueue_shards(queue, shards)
            self.has_pending = admin.execute("SELECT to_regclass('awa.lane_pending') IS NOT NULL").fetchone()[0]
        self.queues = self.pq.physical_queues
        self.check = psycopg.connect(url, autocommit=True)  # pg_stat_activity, on this thread
        self.observer = psycopg.connect(url)  # read-only snapshots, on this thread (never waits)
        self.observer.isolation_level = IsolationLevel.REPEATABLE_READ
        self.observer.read_only = True
        self.producers = [Worker(f"p{i}", url, autocommit=False) for i in range(producers)]
        self.copier = Worker("copy", url, autocommit=False)
        self.claimers = [Worker(f"c{i}", url, autocommit=True, seed=0.25 + 0.1 * i) for i in range(claimers)]
        self.workers = [*self.producers, self.copier, *self.claimers]

    # -- calls on the connections' threads ---------------------------------------------

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def submit(self, w: Worker, label: str, fn: Callable[[], Any], done: Callable[[Any], None],
               transactional: bool = False, settle: bool = True) -> None:
        assert w.call is None, f"{w} is busy with {w.call.label}"

        def run() -> Any:
            try:
                return fn()
            except psycopg.errors.DeadlockDetected as exc:
                if not transactional:
                    raise
                w.tx.rollback()
                w.tx = None
                return Aborted(str(exc).splitlines()[0])

        issued = self.tick()
        self.log.append(f"{issued:>3} {w}: {label}")
        w.call = Call(label, w.threads.submit(run), done, issued)
        if not settle:
            return
        self.settle()
        if w.call is not None and w.call.issued == issued:
            self.log.append(f"    {w}: {label} blocked")
            what = label.split()[0].rstrip(",")
            self.counts["blocked " + what] += 1
            event("blocked: " + what)

    def reap(self) -> None:
        for w in self.workers:
            call = w.call
            if call is None or not call.fut.done():
                continue
            w.call = None
            try:
                result = call.fut.result()
            except BaseException as exc:  # noqa: BLE001 - reported as a failure of the machine
                self.fail("CallFailed", f"{w}: {call.label} raised {type(exc).__name__}: {exc}")
            if call.issued != self.clock:
                self.log.append(f"    {w}: {call.label} returned")
            call.done(result)

    def settle(self, limit: float = SLOW_S) -> None:
        """Wait until every connection is idle or waits for a lock that an idle
        transaction of ours holds (directly or down a chain of such waits), or
        ``limit`` seconds passed. A waits-for cycle is a deadlock: wait for
        PostgreSQL to break it."""
        deadline = time.monotonic() + limit
        while True:
            self.reap()
            busy = {w.pid: w for w in self.workers if w.call is not None}
            if not busy:
                return
            idle = {w.pid for w in self.workers if w.call is None}
            rows = self.check.execute(
                "SELECT pid, wait_event_type, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                [list(busy)],
            ).fetchall()
            waiting = {pid: set(blockers) for pid, kind, blockers in rows if kind == "Lock" and blockers}
            stable = set(idle)
            grew = True
            while grew:
                grew = False
                for pid, blockers in waiting.items():
                    if pid not in stable and blockers <= stable:
                        stable.add(pid)
                        grew = True
            if set(busy) <= stable:
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)

    def idle(self, workers: list[Worker], pred: Callable[[Worker], bool] = lambda w: True) -> list[Worker]:
        return [w for w in workers if w.call is None and pred(w)]

    def pick(self, who: int, workers: list[Worker], pred: Callable[[Worker], bool] = lambda w: True) -> Worker | None:
        """The connection a rule acts on: ``who`` mapped onto the idle ones that
        ``pred`` accepts; None (the step does nothing) when there is none.

        Not a precondition: whether a call is still blocked depends on timing,
        and Hypothesis needs the same choices to draw the same way on a replay
        (preconditions and draws that read such state made it raise
        FlakyStrategyDefinition). The outcome may still differ; the draws do not."""
        pool = self.idle(workers, pred)
        if not pool:
            self.counts["no-op " + sys._getframe(1).f_code.co_name] += 1
            return None
        return pool[who % len(pool)]

    def fail(self, name: str, detail: str) -> None:
        self.broken = True
        raise ProducersViolation(name, detail, self.log)

    # -- producers -----------------------------------------------------------------------

    @rule(who=WHO)
    def begin(self, who: int) -> None:
        w = self.pick(who, self.producers, lambda w: w.txn is None)
        if w is None:
            return
        self.txn_count += 1
        txn = w.txn = Txn(f"{w}.t{self.txn_count}")

        def start() -> None:
            w.tx = w.client.transaction()

        self.submit(w, f"begin {txn.name}", start, lambda _: None)

    def _after(self, txn: Txn) -> frozenset[int]:
        """Rows that must be handed out before a row inserted now: the ones
        committed already, and this transaction's own earlier rows."""
        return frozenset(self.committed) | frozenset(txn.rows)

    def _add_job(self, job: Any, key: str, txn: Txn, after: frozenset[int]) -> None:
        if job.id in self.jobs:
            self.fail("NoCommittedJobSkipped", f"job id {job.id} given twice")
        if self.key_lane.setdefault(key, job.lane) != job.lane:
            self.fail("KeyStaysInItsLane", f"key {key!r}: job {job.id} in lane {job.lane}, "
                                           f"earlier ones in {self.key_lane[key]}")
        self.jobs[job.id] = JobRec(job.id, key, job.lane, txn, after)
        txn.rows.append(job.id)

    def _abort(self, w: Worker, txn: Txn, result: Aborted) -> None:
        self.log.append(f"    {w}: deadlock victim, {txn.name} rolled back ({result.error})")
        self.counts["deadlock"] += 1
        event("deadlock victim")
        self._rolled_back(txn)
        w.txn = None

    def _rolled_back(self, txn: Txn) -> None:
        self.rolled_back |= set(txn.rows)
        txn.rows.clear()
        txn.status = "rolled_back"

    @rule(who=WHO, key=st.sampled_from(KEYS))
    def insert(self, who: int, key: str) -> None:
        w = self.pick(who, self.producers)
        if w is None:
            return
        if w.txn is None:  # as the spec's Insert from "idle": the transaction opens with its first row
            self.txn_count += 1
            w.txn = Txn(f"{w}.t{self.txn_count}")
        txn = w.txn
        after = self._after(txn)
        route = self.pq.route_by_key(key)

        def send() -> Any:
            if w.tx is None:
                w.tx = w.client.transaction()
            return w.tx.insert({"key": key, "txn": txn.name}, kind=KIND, **route)

        def done(result: Any) -> None:
            if isinstance(result, Aborted):
                return self._abort(w, txn, result)
            self.counts["insert"] += 1
            self._add_job(result, key, txn, after)

        self.submit(w, f"insert {key} in {txn.name}", send, done, transactional=True)

    @rule(who=WHO, key=st.sampled_from(KEYS))
    def savepoint(self, who: int, key: str) -> None:
        """SAVEPOINT, then one keyed insert after it (one call), so that a
        rollback to it always has a row to undo."""
        w = self.pick(who, self.producers, lambda w: w.txn is not None)
        if w is None:
            return
        txn = w.txn
        mark = len(txn.rows)
        after = self._after(txn)
        route = self.pq.route_by_key(key)

        def send() -> Any:
            w.tx.execute("SAVEPOINT machine_sp")
            return w.tx.insert({"key": key, "txn": txn.name}, kind=KIND, **route)

        def done(result: Any) -> None:
            if isinstance(result, Aborted):
                return self._abort(w, txn, result)
            txn.savepoint = mark
            self.counts["insert"] += 1
            self._add_job(result, key, txn, after)

        self.submit(w, f"savepoint, insert {key} in {txn.name}", send, done, transactional=True)

    @rule(who=WHO)
    def rollback_to_savepoint(self, who: int) -> None:
        w = self.pick(who, self.producers, lambda w: w.txn is not None and w.txn.savepoint is not None)
        if w is None:
            return
        txn = w.txn

        def done(_: Any) -> None:
            gone = txn.rows[txn.savepoint:]
            del txn.rows[txn.savepoint:]
            self.rolled_back |= set(gone)
            self.counts["rollback_to_savepoint"] += 1
            self.counts["rows undone"] += len(gone)

        self.submit(w, f"rollback to savepoint in {txn.name}", lambda: w.tx.execute("ROLLBACK TO SAVEPOINT machine_sp"),
                    done)

    def _commit(self, w: Worker) -> None:
        txn = w.txn
        assert txn is not None
        txn.status = "committing"

        def end() -> None:
            w.tx.commit()
            w.tx = None

        def done(_: Any) -> None:
            txn.status = "committed"
            self.committed |= set(txn.rows)
            w.txn = None
            self.counts["commit"] += 1

        self.submit(w, f"commit {txn.name} ({len(txn.rows)} rows)", end, done)

    def _rollback(self, w: Worker) -> None:
        txn = w.txn
        assert txn is not None

        def end() -> None:
            w.tx.rollback()
            w.tx = None

        def done(_: Any) -> None:
            self._rolled_back(txn)
            w.txn = None
            self.counts["rollback"] += 1

        self.submit(w, f"rollback {txn.name}", end, done)

    @rule(who=WHO)
    def commit(self, who: int) -> None:
        w = self.pick(who, self.producers, lambda w: w.txn is not None)
        if w is not None:
            self._commit(w)

    @rule(who=WHO)
    def rollback(self, who: int) -> None:
        w = self.pick(who, self.producers, lambda w: w.txn is not None)
        if w is not None:
            self._rollback(w)

    # -- the COPY producer ---------------------------------------------------------------

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=4))
    def copy_insert(self, keys: list[str]) -> None:
        w = self.pick(0, [self.copier])
        if w is None:
            return
        if w.txn is None:
            self.txn_count += 1
            w.txn = Txn(f"copy.t{self.txn_count}")
        txn = w.txn
        after = self._after(txn)
        routes = [self.pq.route_by_key(k) for k in keys]

        def send() -> Any:
            if w.tx is None:
                w.tx = w.client.transaction()
            return w.tx.insert_many([{"key": k, "txn": txn.name} for k in keys], kind=KIND, opts=routes)

        def done(result: Any) -> None:
            if isinstance(result, Aborted):
                return self._abort(w, txn, result)
            self.counts["copy"] += 1
            if len(result) != len(keys):
                self.fail("CopyAnswer", f"a COPY of {len(keys)} jobs returned {len(result)}")
            batch: list[int] = []
            for key, job in zip(keys, result):  # input order: a batch's rows are inserted in it
                self._add_job(job, key, txn, after | frozenset(batch))
                batch.append(job.id)

        self.submit(w, f"copy {keys} in {txn.name}", send, done, transactional=True)

    @rule()
    def copy_commit(self) -> None:
        w = self.pick(0, [self.copier], lambda w: w.txn is not None)
        if w is not None:
            self._commit(w)

    @rule()
    def copy_rollback(self) -> None:
        w = self.pick(0, [self.copier], lambda w: w.txn is not None)
        if w is not None:
            self._rollback(w)

    # -- claimers ----------------------------------------------------------------------

    def _claim(self, w: Worker, limit: int, settle: bool = True) -> None:
        rec = ClaimRec(issued=self.tick())

        def done(jobs: list[Any]) -> None:
            rec.done = self.tick()
            index = len(self.claims)
            self.claims.append(rec)
            for pos, job in enumerate(jobs):
                rec.ids.append(job.id)
                self._handed_out(job, index, pos)
                w.running.append((job.id, job.run_lease))
            if jobs:
                self.counts["jobs claimed"] += len(jobs)
            self.counts["claim"] += 1

        self.submit(w, f"claim {limit}", lambda: w.client.claim(self.queues, limit), done, settle=settle)

    def _handed_out(self, job: Any, index: int, pos: int) -> None:
        rec = self.jobs.get(job.id)
        if job.id in self.claimed_at:
            self.fail("NoCommittedJobSkipped", f"job {job.id} handed out twice")
        if job.id in self.rolled_back:
            self.fail("NoCommittedJobSkipped", f"rolled-back job {job.id} handed out")
        if rec is None or rec.txn.status not in ("committed", "committing"):
            self.fail("NoCommittedJobSkipped", f"job {job.id} handed out before its transaction committed "
                                               f"({'unknown' if rec is None else rec.txn.status})")
        if job.lane != rec.lane:
            self.fail("KeyStaysInItsLane", f"job {job.id} claimed from lane {job.lane}, inserted in {rec.lane}")
        if job.lane_seq is None:
            self.fail("NumbersDense", f"job {job.id} handed out without a lane number")
        self.claimed_at[job.id] = (index, pos)
        self.claimed_seq[job.id] = job.lane_seq

    @rule(who=WHO, limit=st.integers(1, 3))
    def claim(self, who: int, limit: int) -> None:
        w = self.pick(who, self.claimers)
        if w is not None:
            self._claim(w, limit)

    @rule(limits=st.tuples(st.integers(1, 3), st.integers(1, 3)))
    def claim_together(self, limits: tuple[int, int]) -> None:
        """Every idle claimer (two at most) sent at once: they race for the same lanes."""
        ready = self.idle(self.claimers)
        if not ready:
            self.counts["no-op"] += 1
            return
        for w, limit in zip(ready, limits):
            self._claim(w, limit, settle=False)
        self.settle()
        self.counts["claim_together"] += 1

    @rule(who=WHO)
    def complete(self, who: int) -> None:
        w = self.pick(who, self.claimers, lambda w: bool(w.running))
        if w is None:
            return
        items = list(w.running)

        def done(answers: list[bool]) -> None:
            if not all(answers):
                self.fail("CompleteAnswer", f"complete_many({items}) answered {answers}")
            w.running = [i for i in w.running if i not in items]
            self.counts["completed"] += len(items)

        self.submit(w, f"complete {[i for i, _ in items]}", lambda: w.client.complete_many(items), done)


    # -- invariants ------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[int, tuple[Lane, int | None, str, int]], dict[Lane, int], dict[Lane, int],
                                set[int]]:
        obs = self.observer
        try:
            jobs = {r[0]: ((r[1], r[2], r[3]), r[4], r[5], r[6]) for r in obs.execute(
                "SELECT id, queue, priority, enqueue_shard, lane_seq, state::text, attempt FROM awa.jobs")}
            heads = {(q, p, s): n for q, p, s, n in obs.execute(
                "SELECT queue, priority, enqueue_shard, next_seq FROM awa.enqueue_heads")}
            cursors = {(q, p, s): c for q, p, s, c, h in obs.execute(
                "SELECT queue, priority, enqueue_shard, claim_seq, holes FROM awa.claim_heads")}
            pending = ({r[0] for r in obs.execute("SELECT job_id FROM awa.lane_pending")}
                       if self.has_pending else set())
        finally:
            obs.rollback()
        return jobs, heads, cursors, pending

    def claims_in_flight(self) -> bool:
        return any(w.call is not None for w in self.claimers)

    @invariant()
    def database_agrees(self) -> None:
        if not self.started:
            return
        self.check_all(final=False)

    def check_all(self, final: bool) -> None:
        jobs, heads, cursors, pending = self.snapshot()
        quiet = not self.claims_in_flight()

        # NoCommittedJobSkipped: what is visible is committed; nothing rolled back shows.
        for job_id, (lane, seq, state, attempt) in jobs.items():
            rec = self.jobs.get(job_id)
            if job_id in self.rolled_back:
                self.fail("NoCommittedJobSkipped", f"rolled-back job {job_id} is visible ({state}, lane_seq {seq})")
            if rec is None or rec.txn.status not in ("committed", "committing"):
                self.fail("NoCommittedJobSkipped", f"job {job_id} visible before its transaction committed")
            if lane != rec.lane:
                self.fail("KeyStaysInItsLane", f"job {job_id} moved from lane {rec.lane} to {lane}")
            if attempt > 1:
                self.fail("NoCommittedJobSkipped", f"job {job_id} was handed out {attempt} times")
            if quiet and state != "available" and job_id not in self.claimed_at:
                self.fail("NoCommittedJobSkipped", f"job {job_id} is {state} but no claim handed it out")
            if state == "available" and seq is None and job_id not in pending:
                self.fail("NumbersDense", f"available job {job_id} has no lane number and no pending row")
        for job_id in self.committed:
            if job_id not in jobs:
                self.fail("NoCommittedJobSkipped", f"committed job {job_id} is not visible")

        # NumbersDense: per lane, the numbers are exactly 1 .. next_seq - 1.
        numbers: dict[Lane, dict[int, int]] = defaultdict(dict)
        for job_id, (lane, seq, _, _) in jobs.items():
            if seq is not None:
                numbers[lane][job_id] = seq
        for job_id, seq in self.claimed_seq.items():
            lane = self.jobs[job_id].lane
            if numbers[lane].setdefault(job_id, seq) != seq:
                self.fail("NumbersDense", f"job {job_id} was handed out as number {seq} and now has "
                                          f"{numbers[lane][job_id]}")
        for lane in set(numbers) | set(heads):
            seqs = sorted(numbers[lane].values())
            top = heads.get(lane, 1) - 1
            if seqs != list(range(1, top + 1)):
                self.fail("NumbersDense", f"lane {lane}: numbers {seqs}, next_seq {top + 1}")

        if not quiet:
            return
        # NoCommittedJobSkipped: no committed number at or below the cursor was passed over;
        # NumbersDense: the numbers handed out are exactly 1 .. claim_seq.
        handed: dict[Lane, list[int]] = defaultdict(list)
        for job_id, seq in self.claimed_seq.items():
            handed[self.jobs[job_id].lane].append(seq)
        for lane in set(handed) | set(cursors):
            cursor = cursors.get(lane, 0)
            if sorted(handed[lane]) != list(range(1, cursor + 1)):
                self.fail("NumbersDense", f"lane {lane}: handed out {sorted(handed[lane])}, claim_seq {cursor}")
        for job_id in self.committed:
            lane, seq, _, _ = jobs[job_id]
            if seq is not None and seq <= cursors.get(lane, 0) and job_id not in self.claimed_at:
                self.fail("NoCommittedJobSkipped", f"committed job {job_id} (lane {lane}, number {seq}) is at or "
                                                   f"below claim_seq {cursors[lane]} and was never handed out")
        self.check_fifo()

        if final:
            for job_id in self.committed:
                if job_id not in self.claimed_at:
                    self.fail("EveryCommittedJobClaimed", f"committed job {job_id} was never handed out")
                if jobs[job_id][2] != "completed":
                    self.fail("EveryCommittedJobClaimed", f"job {job_id} ends {jobs[job_id][2]}")
            for lane, top in heads.items():
                if cursors.get(lane, 0) != top - 1:
                    self.fail("EveryCommittedJobClaimed", f"lane {lane}: claim_seq {cursors.get(lane, 0)} "
                                                          f"after the drain, next_seq {top}")

    def check_fifo(self) -> None:
        """PerKeyFifo over every handed-out job and the rows it must follow."""
        for b, (kb, pb) in self.claimed_at.items():
            rb = self.jobs[b]
            for a in rb.after:
                ra = self.jobs[a]
                if a in self.rolled_back or (ra.lane != rb.lane and ra.key != rb.key):
                    continue
                why = (f"{a} was inserted first in {ra.txn.name}" if ra.txn is rb.txn
                       else f"{a} ({ra.txn.name}) had committed before {b} ({rb.txn.name}) was inserted")
                if a not in self.claimed_at:
                    self.fail("PerKeyFifo", f"job {b} handed out but {a} was not; {why}")
                ka, pa = self.claimed_at[a]
                if (ka == kb and pa > pb) or self.claims[ka].issued > self.claims[kb].done:
                    self.fail("PerKeyFifo", f"job {b} handed out before {a} (claims {kb}.{pb} and {ka}.{pa}); {why}")

    # -- teardown: end everything, drain, EveryCommittedJobClaimed ---------------------------

    def teardown(self) -> None:
        if not self.started:
            return
        try:
            if not self.broken:
                self.finish_transactions()
                self.drain()
                self.check_all(final=True)
        finally:
            for w in self.workers:
                w.close()
            self.check.close()
            self.observer.close()

    def finish_transactions(self) -> None:
        deadline = time.monotonic() + TEARDOWN_S
        while True:
            self.settle()
            for w in [*self.producers, self.copier]:
                if w.call is None and w.txn is not None:
                    self._commit(w)
            if all(w.call is None and w.txn is None for w in self.workers):
                return
            if time.monotonic() > deadline:
                stuck = [f"{w}: {w.call.label}" for w in self.workers if w.call is not None]
                self.fail("NeverStuck", f"calls still out after every transaction ended: {stuck}")
            time.sleep(0.01)

    def drain(self) -> None:
        w = self.claimers[0]
        empty = 0
        for _ in range(200):
            before = len(self.claimed_at)
            self._claim(w, 10)
            self.settle(limit=TEARDOWN_S)
            if w.call is not None:
                self.fail("NeverStuck", "a drain claim did not return")
            empty = empty + 1 if len(self.claimed_at) == before else 0
            if empty == 2:
                break
        for c in self.claimers:
            if c.running:
                items = list(c.running)
                c.running = []
                answers = c.threads.submit(c.client.complete_many, items).result(TEARDOWN_S)
                if not all(answers):
                    self.fail("CompleteAnswer", f"complete_many({items}) answered {answers}")


def test_concurrent_producers_machine(database_factory) -> None:
    machine = type("ProducersMachine", (ProducersMachine,),
                   {"database_url": database_factory(migrated=True), "counts": Counter()})
    run_state_machine_as_test(machine, settings=machine_settings(examples_scale=3, steps=30))
    print("exercised:", dict(machine.counts))
    for what in ("insert", "copy", "commit", "rollback", "rollback_to_savepoint", "jobs claimed", "completed"):
        assert machine.counts[what] > 0, f"no run exercised {what}: {dict(machine.counts)}"


def test_pinned_session_id_blocks_out_of_time_order(database_factory) -> None:
    """Job ids come in per-session cached blocks, so ids are not in time order.

    p1 inserts first (its session takes ids 1..1000), then p0 (1001..): p0's
    two jobs commit before p1's second job is inserted, yet p1's second id (2)
    is below theirs. PerKeyFifo demands p0's jobs first; numbering by job id
    instead of pending_id (mutant sequence-by-job-id) hands out p1's first.
    Hypothesis rarely reaches this (four inserts of one lane from two sessions
    in one sequencing round), so it is pinned here through the machine's rules.
    """
    cls = type("ProducersMachine", (ProducersMachine,),
               {"database_url": database_factory(migrated=True), "counts": Counter()})
    machine = cls()
    try:
        machine.setup(partitions=1, shards=1, producers=2, claimers=1)
        for who in (1, 0, 0, 1):  # producer p1, p0, p0, p1; each commits its row
            machine.insert(who, "k0")
            machine.commit(who)
            machine.database_agrees()
        machine.claim(0, 3)
        machine.claim(0, 3)
        machine.database_agrees()
    finally:
        machine.teardown()
    assert len(machine.claimed_at) == 4, machine.log
