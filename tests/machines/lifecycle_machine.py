"""Lifecycle state machine: PartitionedQueueLifecycle replayed on PostgreSQL.

Several logical workers claim, heartbeat, complete, fail and crash; time is a
variable the machine advances (the client's ``clock``), so heartbeats go stale
and rescue fires without sleeping. Every rule runs through the public client
API; after every step the database is read back and compared with

* this module's own model (states, leases, attempts, lane numbers, times), and
* in ``spec_mode``, the formal-methods helper's Python mirror of the spec:
  each step is also recorded as a spec action, replayed through
  ``verification.mirrors.lifecycle`` and the replayed spec state must EQUAL the state
  abstracted from the database rows (``verification.trace``).

``spec_mode`` keeps to operations with an exact spec counterpart: a failed
attempt is retried with no delay (spec ``Fail`` requeues at once) and a rescue
is followed by advancing time past the backoff and promoting (spec ``Rescue``
requeues at once). With ``spec_mode`` off the machine also uses backoff
retries, terminal ``fail`` and a separate ``promote`` rule.

Invariants (spec name -> method): NoJobLost ``check_no_job_lost``,
NoTwoLiveLeases ``check_no_two_live_leases``, StaleAttemptNeverFinalizes
``check_stale_never_finalizes`` (+ every stale call returned False and left the
row untouched), ClaimOrderFifo ``check_claim_order_fifo`` (+ each claim took
the head of its lane), TerminalIsFinal ``check_terminal_is_final``,
KeyedJobsStayInKeyLane ``check_key_preserved``, model == database
``check_model_agrees``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from hypothesis import strategies as st
from hypothesis import target
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from verification.mirrors import lifecycle as spec
from awa.routing import PartitionedQueue, shard_for_ordering_key
from verification.trace import LifecycleTrace, abstract_lifecycle_state
from tests.machines._db import JobRow, read_enqueue_heads, read_jobs
from tests.machines._support import bind_machine, reset_database, user_tables

EPOCH = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
HEARTBEAT_TIMEOUT = 30.0  # seconds; rescue_expired(heartbeat_timeout=...)
PARTITIONS = 2
SHARDS = 2
NUM_KEYS = 4
NUM_WORKERS = 3
MAX_ATTEMPTS = 3
NUM_JOBS = 6
LOGICAL = "life"
TERMINAL = {"completed", "failed", "cancelled"}
SPEC_STATUS = {"available": spec.READY, "running": spec.RUNNING, "completed": spec.COMPLETED, "failed": spec.FAILED}


class LifecycleViolation(AssertionError):
    def __init__(self, name: str, detail: str, steps: list[str]) -> None:
        self.invariant_name = name
        self.detail = detail
        self.steps = list(steps)
        super().__init__(f"{name} violated: {detail}\nsteps:\n  " + "\n  ".join(self.steps))


def spec_keys(pq: PartitionedQueue) -> dict[int, bytes]:
    """A real key for every spec key k whose routing lands on the spec's KeyLane(k)."""
    c = constants()
    table: dict[int, bytes] = {}
    for k in c.keys:
        want = spec.key_lane(c, k)
        i = 0
        while True:
            candidate = f"key{k}-{i}".encode()
            if (pq.partition_for_key(candidate), shard_for_ordering_key(candidate, SHARDS)) == want:
                table[k] = candidate
                break
            i += 1
    return table


def constants() -> spec.LifecycleConstants:
    return spec.LifecycleConstants(
        num_jobs=NUM_JOBS, num_partitions=PARTITIONS, num_shards=SHARDS, num_keys=NUM_KEYS,
        num_workers=NUM_WORKERS, max_attempts=MAX_ATTEMPTS,
    )


@dataclass
class ModelJob:
    sid: int  # spec job id: enqueue order, 1-based
    db_id: int
    key: bytes | None
    spec_key: int
    queue: str
    shard: int
    state: str = "available"
    lease: int = 0
    attempt: int = 0
    lane_seq: int | None = None
    heartbeat_at: dt.datetime | None = None
    run_at: dt.datetime | None = None
    done_lease: int = 0
    max_attempts: int = MAX_ATTEMPTS

    @property
    def lane(self) -> tuple[str, int]:
        return (self.queue, self.shard)


@dataclass
class Snapshot:
    state: str
    run_lease: int
    finalized_at: dt.datetime | None


@dataclass
class Worker:
    holding: tuple[int, int] | None = None  # (spec id, run lease)


class LifecycleMachine(RuleBasedStateMachine):
    database_url: str = ""
    spec_mode: bool = True
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _table_cache: dict[str, list[str]] = {}
    pq = PartitionedQueue(LOGICAL, PARTITIONS)
    real_keys = spec_keys(pq)
    #: Traces of finished runs (spec mode), newest last; the trace tests read them.
    recorded: list[LifecycleTrace] = []
    #: Spec actions taken over all runs (spec mode), to show what was exercised.
    action_counts: Counter[str] = Counter()

    def __init__(self) -> None:
        super().__init__()
        from awa.client import Client

        self.conn = self.check_conn
        tables = self._table_cache.get(self.database_url)
        if tables is None:
            tables = self._table_cache[self.database_url] = user_tables(self.conn)
        reset_database(self.conn, tables, truncate=True)
        # claim_jobs orders lanes of equal priority by random(): seed the
        # session so a replayed example takes the same lanes (Hypothesis
        # needs deterministic examples to shrink). random() is called per row
        # in scan order, and PL/pgSQL switches a statement to a generic plan
        # after five runs in a session, which may scan the lanes in another
        # order: custom plans in every example keep the order the same.
        self.client_conn.execute("SET plan_cache_mode = force_custom_plan")
        self.client_conn.execute("SELECT setseed(0.25)")
        self.now = EPOCH
        self.client = Client(self.client_conn, clock=lambda: self.now, jitter=lambda: 0.0)
        for queue in self.pq.physical_queues:
            self.client.set_enqueue_shards(queue, SHARDS)
        self.jobs: dict[int, ModelJob] = {}  # by spec id
        self.by_db: dict[int, int] = {}
        self.lane_next: dict[tuple[str, int], int] = {}
        self.claim_head: dict[tuple[str, int], int] = {}
        self.workers = {w: Worker() for w in range(1, NUM_WORKERS + 1)}
        self.terminal: dict[int, Snapshot] = {}
        self.steps: list[str] = []
        self.trace = LifecycleTrace(constants=constants())
        self.spec_state = spec.initial_state(self.trace.constants)
        self.spec_exact = True
        self.max_running_lease = 0

    def teardown(self) -> None:
        if currently_in_test_context():  # pinned replays call teardown() directly
            target(float(self.max_running_lease), label="highest lease of a running job")
            # ...while keeping runs varied: reward runs that use many kinds of step.
            target(float(len({s.split("(")[0] for s in self.steps})), label="kinds of step")
        if self.spec_mode and self.spec_exact and self.trace.steps:
            type(self).action_counts.update(a for a, _ in self.trace.steps)
            type(self).recorded.append(self.trace)
            del type(self).recorded[:-20]

    # --- helpers ------------------------------------------------------------------

    def _violation(self, name: str, detail: str) -> LifecycleViolation:
        return LifecycleViolation(name, detail, self.steps)

    def _spec_step(self, action: str, *params: object) -> None:
        """Record a spec action and advance the mirror; it must be enabled.

        Once the run used an operation the spec does not have (backoff, terminal
        fail), the mirror is left behind and only the database checks remain.
        """
        if not self.spec_exact:
            return
        nxt = spec.ACTIONS[action](self.trace.constants, self.spec_state, *params)
        if nxt is None:
            raise self._violation("SpecStepEnabled", f"{action}{params} is not enabled in the spec mirror")
        if not spec.terminal_is_final(self.trace.constants, self.spec_state, nxt):
            raise self._violation("TerminalIsFinal", f"{action}{params} changes a terminal job in the spec mirror")
        self.spec_state = nxt
        self.trace.steps.append((action, params))

    def fresh(self, job: ModelJob) -> bool:
        return (
            job.state == "running"
            and job.heartbeat_at is not None
            and job.heartbeat_at >= self.now - dt.timedelta(seconds=HEARTBEAT_TIMEOUT)
        )

    def _lane_of(self, queue: str, shard: int) -> tuple[int, int]:
        return (self.pq.physical_queues.index(queue), shard)

    def _requeue(self, job: ModelJob) -> None:
        job.state = "available"
        job.lane_seq = self.lane_next.get(job.lane, 1)
        self.lane_next[job.lane] = job.lane_seq + 1
        job.heartbeat_at = None

    def _end_attempt_failed(self, job: ModelJob, *, backoff: bool) -> None:
        """Retry while attempts remain (at once, or after 2**attempt s), else fail."""
        job.heartbeat_at = None
        if job.attempt < job.max_attempts:
            if backoff:
                job.state = "retryable"
                job.run_at = self.now + dt.timedelta(seconds=2.0**job.attempt)
            else:
                self._requeue(job)
        else:
            job.state = "failed"
            job.done_lease = job.lease
            if job.attempt < MAX_ATTEMPTS:
                # A one-attempt job (outside spec mode): the spec's single
                # MaxAttempts would have retried it, so the mirror stops here.
                self.spec_exact = False

    def _busy(self) -> list[int]:
        return [w for w, wk in self.workers.items() if wk.holding is not None]

    def _idle(self) -> list[int]:
        return [w for w, wk in self.workers.items() if wk.holding is None]

    def _worker_job(self, w: int) -> tuple[ModelJob, int]:
        sid, lease = self.workers[w].holding  # type: ignore[misc]
        return self.jobs[sid], lease

    def _current(self, job: ModelJob, lease: int) -> bool:
        return job.state == "running" and job.lease == lease

    def _expire_steps(self, before: dict[int, bool]) -> None:
        for sid, was_fresh in before.items():
            if was_fresh and not self.fresh(self.jobs[sid]):
                self._spec_step("Expire", sid)

    # --- rules: enqueue ----------------------------------------------------------------

    def _add(self, job, key: bytes | None, spec_key: int) -> ModelJob:
        sid = len(self.jobs) + 1
        m = ModelJob(sid, job.id, key, spec_key, job.queue, job.enqueue_shard)
        m.lane_seq = self.lane_next.get(m.lane, 1)
        self.lane_next[m.lane] = m.lane_seq + 1
        self.jobs[sid] = m
        self.by_db[job.id] = sid
        if spec_key:
            self._spec_step("EnqueueKeyed", spec_key)
        else:
            self._spec_step("EnqueueUnkeyed", self._lane_of(job.queue, job.enqueue_shard))
        return m

    @precondition(lambda self: len(self.jobs) < NUM_JOBS)
    @rule(k=st.integers(0, NUM_KEYS), index=st.integers(0, 3))
    def enqueue(self, k: int, index: int) -> None:
        """One insert: keyed (spec key k routed by PartitionedQueue) or, k = 0, unkeyed."""
        self.steps.append(f"enqueue(k={k}, index={index})")
        if k:
            key = self.real_keys[k]
            job = self.client.insert({"k": k}, kind="life", max_attempts=MAX_ATTEMPTS, **self.pq.route_by_key(key))
            self._add(job, key, k)
        else:
            # Outside spec mode an unkeyed single insert has one attempt, so a
            # run reaches a last attempt's retry often (the spec's MaxAttempts
            # is one constant for all jobs).
            most = MAX_ATTEMPTS if self.spec_mode else 1
            job = self.client.insert({}, kind="life", max_attempts=most, queue=self.pq.queue_for_index(index))
            self._add(job, None, 0).max_attempts = most

    @precondition(lambda self: len(self.jobs) <= NUM_JOBS - 2)
    @rule(ks=st.lists(st.integers(0, NUM_KEYS), min_size=2, max_size=3))
    def enqueue_copy(self, ks: list[int]) -> None:
        """A COPY batch mixing keyed and unkeyed rows via per-job opts."""
        ks = ks[: NUM_JOBS - len(self.jobs)]
        self.steps.append(f"enqueue_copy(ks={ks})")
        opts = [
            self.pq.route_by_key(self.real_keys[k]) if k else {"queue": self.pq.queue_for_index(i), "ordering_key": None}
            for i, k in enumerate(ks)
        ]
        jobs = self.client.insert_many_copy([{"k": k} for k in ks], kind="life", max_attempts=MAX_ATTEMPTS, opts=opts)
        for job, k in zip(jobs, ks):
            self._add(job, self.real_keys[k] if k else None, k)

    # --- rules: workers ----------------------------------------------------------------

    @precondition(lambda self: self._idle())
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self._idle()), label="worker")
        self.steps.append(f"claim(w={w})")
        got = self.client.claim(self.pq.physical_queues, 1)
        available = [j for j in self.jobs.values() if j.state == "available"]
        if not got:
            if available:
                raise self._violation("NoJobLost", f"claim found nothing but jobs {[j.sid for j in available]} are available")
            return
        assert len(got) == 1
        row = got[0]
        sid = self.by_db.get(row.id)
        if sid is None or self.jobs[sid].state != "available":
            raise self._violation("ClaimOrderFifo", f"claimed job {row.id} that the model has not available")
        job = self.jobs[sid]
        head = min(j.lane_seq for j in available if j.lane == job.lane)  # type: ignore[type-var]
        if job.lane_seq != head or job.lane_seq != self.claim_head.get(job.lane, 0) + 1:
            raise self._violation(
                "ClaimOrderFifo", f"claimed seq {job.lane_seq} of lane {job.lane}; lane head is {head}, claim head {self.claim_head.get(job.lane, 0)}"
            )
        self.claim_head[job.lane] = max(self.claim_head.get(job.lane, 0), job.lane_seq)  # type: ignore[type-var]
        job.state = "running"
        job.lease += 1
        job.attempt += 1
        job.heartbeat_at = self.now
        if row.run_lease != job.lease:
            raise self._violation("NoTwoLiveLeases", f"claim returned lease {row.run_lease}, model {job.lease}")
        self.workers[w].holding = (sid, job.lease)
        self._spec_step("Claim", w, sid)

    @precondition(lambda self: self._busy())
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self._busy()), label="worker")
        job, lease = self._worker_job(w)
        self.steps.append(f"heartbeat(w={w})")
        was_fresh = self.fresh(job)
        ok = self.client.heartbeat(job.db_id, lease)
        if ok != self._current(job, lease):
            raise self._violation("StaleAttemptNeverFinalizes", f"heartbeat of job {job.sid} lease {lease} returned {ok}")
        if ok:
            job.heartbeat_at = self.now
            if not was_fresh:
                self._spec_step("Heartbeat", w)

    @precondition(lambda self: self._busy())
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self._busy()), label="worker")
        self._complete_as(w)

    def _complete_as(self, w: int) -> None:
        job, lease = self._worker_job(w)
        self.steps.append(f"complete(w={w})")
        current = self._current(job, lease)
        ok = self.client.complete(job.db_id, lease)
        if ok != current:
            raise self._violation("StaleAttemptNeverFinalizes", f"complete of job {job.sid} lease {lease} returned {ok}, model {current}")
        self.workers[w].holding = None
        if ok:
            job.state = "completed"
            job.done_lease = lease
            job.heartbeat_at = None
            self._spec_step("Complete", w)
        else:
            self._spec_step("DropStale", w)

    def _zombies(self) -> list[int]:
        """Workers whose attempt was rescued and whose job now runs under a later lease."""
        out = []
        for w in self._busy():
            job, lease = self._worker_job(w)
            if job.state == "running" and job.lease > lease:
                out.append(w)
        return out

    @precondition(lambda self: self._zombies())
    @rule(data=st.data())
    def zombie_completes(self, data: st.DataObject) -> None:
        """A worker that lost its lease (rescued, re-claimed) finishes anyway."""
        w = data.draw(st.sampled_from(self._zombies()), label="zombie worker")
        self._complete_as(w)

    @precondition(lambda self: self._busy())
    @rule(data=st.data(), how=st.sampled_from(["retry_now", "retry_backoff", "fail_terminal"]))
    def fail(self, data: st.DataObject, how: str) -> None:
        w = data.draw(st.sampled_from(self._busy()), label="worker")
        if self.spec_mode:
            how = "retry_now"
        job, lease = self._worker_job(w)
        self.steps.append(f"fail(w={w}, how={how})")
        current = self._current(job, lease)
        if how == "retry_now":
            ok = self.client.retry(job.db_id, lease, after_seconds=0, error="boom")
        elif how == "retry_backoff":
            ok = self.client.retry(job.db_id, lease, error="boom")
        else:
            ok = self.client.fail(job.db_id, lease, error="fatal")
        if ok != current:
            raise self._violation("StaleAttemptNeverFinalizes", f"{how} of job {job.sid} lease {lease} returned {ok}, model {current}")
        self.workers[w].holding = None
        if not ok:
            self._spec_step("DropStale", w)
            return
        if how == "fail_terminal":
            job.state = "failed"
            job.done_lease = lease
            job.heartbeat_at = None
            self.spec_exact = False
        else:
            self._end_attempt_failed(job, backoff=how == "retry_backoff")
            if how == "retry_backoff":
                self.spec_exact = False
            self._spec_step("Fail", w)

    @rule(w=st.integers(1, NUM_WORKERS))
    def crash(self, w: int) -> None:
        """The worker dies: it forgets its attempt; the row stays running."""
        if self.workers[w].holding is None:
            return
        self.steps.append(f"crash(w={w})")
        self.workers[w].holding = None
        self._spec_step("Crash", w)

    # --- rules: time and maintenance --------------------------------------------------

    @rule(seconds=st.sampled_from([1, 10, 29, 31, 120, 3600]))
    def advance_time(self, seconds: int) -> None:
        self.steps.append(f"advance_time({seconds})")
        before = {sid: self.fresh(j) for sid, j in self.jobs.items()}
        self.now += dt.timedelta(seconds=seconds)
        self._expire_steps(before)

    @precondition(lambda self: self._busy())
    @rule()
    def stall_past_timeout(self) -> None:
        """Every held attempt goes quiet for longer than the heartbeat timeout."""
        self.advance_time(int(HEARTBEAT_TIMEOUT) + 1)

    @rule()
    def rescue(self) -> None:
        self.steps.append("rescue()")
        stale = {sid for sid, j in self.jobs.items() if j.state == "running" and not self.fresh(j)}
        result = self.client.rescue_expired(heartbeat_timeout=HEARTBEAT_TIMEOUT)
        rescued = {self.by_db.get(job_id) for job_id, _, _ in result}
        if rescued != stale:
            raise self._violation("NoJobLost", f"rescue took {sorted(map(str, rescued))}, model expected {sorted(stale)}")
        if not result:
            # It changed nothing (checked above), so it is left out of the
            # reported counterexample: the shrinker does not always delete such
            # no-op steps, and the example replays the same without them.
            self.steps.pop()
        for job_id, lease, outcome in result:
            job = self.jobs[self.by_db[job_id]]
            if lease != job.lease:
                raise self._violation("StaleAttemptNeverFinalizes", f"rescue of job {job.sid} under lease {lease}, model {job.lease}")
            self._end_attempt_failed(job, backoff=True)
            if outcome != job.state:
                raise self._violation("NoJobLost", f"rescue of job {job.sid}: outcome {outcome}, model {job.state}")
        if not self.spec_mode or not rescued:
            for sid in sorted(rescued, key=lambda s: self.jobs[s].state != "failed"):
                if self.jobs[sid].state == "failed":
                    self._spec_step("Rescue", sid)
            if any(self.jobs[s].state == "retryable" for s in rescued):
                self.spec_exact = False
            return
        # Spec Rescue requeues at once: advance past the backoff and promote now.
        due = [self.jobs[s].run_at for s in rescued if self.jobs[s].state == "retryable"]
        before = {sid: self.fresh(j) for sid, j in self.jobs.items()}
        if due:
            self.now = max(self.now, max(due))  # type: ignore[type-var]
        self._promote_expected_and_check()
        requeued = sorted(
            (s for s in rescued if self.jobs[s].state == "available"), key=lambda s: self.jobs[s].lane_seq or 0
        )
        for sid in [s for s in rescued if self.jobs[s].state == "failed"] + requeued:
            self._spec_step("Rescue", sid)
        self._expire_steps({s: f for s, f in before.items() if s not in rescued})

    def _promote_expected_and_check(self) -> None:
        due = sorted(
            (j for j in self.jobs.values() if j.state in ("retryable", "scheduled") and j.run_at <= self.now),  # type: ignore[operator]
            key=lambda j: (j.run_at, j.db_id),
        )
        count = self.client.promote_due()
        if count != len(due):
            raise self._violation("NoJobLost", f"promote_due moved {count} jobs, model expected {len(due)}")
        for job in due:
            self._requeue(job)

    @precondition(lambda self: not self.spec_mode)
    @rule()
    def promote(self) -> None:
        self.steps.append("promote()")
        self._promote_expected_and_check()

    @rule(data=st.data(), call=st.sampled_from(["complete", "retry", "heartbeat", "cancel", "fail"]))
    def stale_replay(self, data: st.DataObject, call: str) -> None:
        """A zombie holder of an old lease calls in: nothing may change (spec: stutter)."""
        candidates = [
            (j, r) for j in self.jobs.values() for r in range(1, j.lease + 1) if not self._current(j, r)
        ]
        if not candidates:
            return
        job, lease = data.draw(st.sampled_from(candidates), label="stale attempt")
        self.steps.append(f"stale_replay(job={job.sid}, lease={lease}, call={call})")
        before = self.client.get_job(job.db_id)
        ok = {
            "complete": lambda: self.client.complete(job.db_id, lease),
            "retry": lambda: self.client.retry(job.db_id, lease, after_seconds=0),
            "heartbeat": lambda: self.client.heartbeat(job.db_id, lease),
            "cancel": lambda: self.client.cancel(job.db_id, lease),
            "fail": lambda: self.client.fail(job.db_id, lease),
        }[call]()
        after = self.client.get_job(job.db_id)
        if ok or before != after:
            raise self._violation(
                "StaleAttemptNeverFinalizes", f"{call} by stale lease {lease} of job {job.sid} returned {ok}; row changed: {before != after}"
            )

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        rows = read_jobs(self.conn)
        heads = {(q, s): n for (q, p, s), n in read_enqueue_heads(self.conn).items()}
        claims = {
            (q, s): n for q, p, s, n in self.conn.execute("SELECT queue, priority, enqueue_shard, claim_seq FROM awa.claim_heads")
        }
        self.check_model_agrees(rows, heads)
        self.check_no_job_lost(rows, heads, claims)
        self.check_claim_order_fifo(rows, claims)
        self.check_no_two_live_leases(rows)
        self.check_stale_never_finalizes(rows)
        self.check_terminal_is_final(rows)
        self.check_key_preserved(rows)
        if self.spec_mode:
            self.check_spec_mirror(rows, heads, claims)
        # Steer the search toward the interesting corner: a job running under
        # a later lease while an older holder may still call in.
        running = [j.lease for j in self.jobs.values() if j.state == "running"]
        self.max_running_lease = max([self.max_running_lease, *running])

    def check_model_agrees(self, rows: dict[int, JobRow], heads: dict) -> None:
        if set(rows) != set(self.by_db):
            raise self._violation("NoJobLost", f"database ids {sorted(rows)} != model ids {sorted(self.by_db)}")
        for job in self.jobs.values():
            row = rows[job.db_id]
            got = (row.state, row.run_lease, row.attempt)
            want = (job.state, job.lease, job.attempt)
            if got != want:
                raise self._violation("ModelAgrees", f"job {job.sid}: database (state, lease, attempt) {got}, model {want}")
            if job.state == "available" and row.lane_seq != job.lane_seq:
                raise self._violation("ModelAgrees", f"job {job.sid}: lane_seq {row.lane_seq}, model {job.lane_seq}")
            if job.state == "running" and row.heartbeat_at != job.heartbeat_at:
                raise self._violation("ModelAgrees", f"job {job.sid}: heartbeat_at {row.heartbeat_at}, model {job.heartbeat_at}")
            if job.state == "retryable" and row.run_at != job.run_at:
                raise self._violation("ModelAgrees", f"job {job.sid}: run_at {row.run_at}, model {job.run_at}")
        for lane, n in self.lane_next.items():
            if heads.get(lane, 1) != n:
                raise self._violation("ModelAgrees", f"lane {lane}: head next_seq {heads.get(lane)}, model {n}")

    def check_no_job_lost(self, rows: dict[int, JobRow], heads: dict, claims: dict) -> None:
        slots: dict[tuple[str, int, int], int] = {}
        for row in rows.values():
            if row.state == "available":
                other = slots.setdefault((row.queue, row.enqueue_shard, row.lane_seq), row.id)  # type: ignore[arg-type]
                if other != row.id:
                    raise self._violation("NoJobLost", f"jobs {other} and {row.id} share a lane slot")
        for lane, next_seq in heads.items():
            for n in range(claims.get(lane, 0) + 1, next_seq):
                if (*lane, n) not in slots:
                    raise self._violation("NoJobLost", f"lane {lane} slot {n} (claim head {claims.get(lane, 0)}) has no available job")

    def check_claim_order_fifo(self, rows: dict[int, JobRow], claims: dict) -> None:
        for row in rows.values():
            if row.state == "available" and row.lane_seq <= claims.get((row.queue, row.enqueue_shard), 0):  # type: ignore[operator]
                raise self._violation("ClaimOrderFifo", f"available job {row.id} seq {row.lane_seq} is behind the claim head")

    def check_no_two_live_leases(self, rows: dict[int, JobRow]) -> None:
        for row in rows.values():
            if row.state != "running":
                continue
            sid = self.by_db[row.id]
            live = [w for w, wk in self.workers.items() if wk.holding == (sid, row.run_lease)]
            if len(live) > 1:
                raise self._violation("NoTwoLiveLeases", f"job {sid} lease {row.run_lease} held by workers {live}")

    def check_stale_never_finalizes(self, rows: dict[int, JobRow]) -> None:
        for job in self.jobs.values():
            row = rows[job.db_id]
            if row.state in TERMINAL and job.done_lease != row.run_lease:
                raise self._violation("StaleAttemptNeverFinalizes", f"job {job.sid} finalized by lease {job.done_lease}, current {row.run_lease}")

    def check_terminal_is_final(self, rows: dict[int, JobRow]) -> None:
        for row in rows.values():
            if row.state not in TERMINAL:
                if row.id in self.terminal:
                    raise self._violation("TerminalIsFinal", f"job {row.id} left {self.terminal[row.id].state} for {row.state}")
                continue
            snap = Snapshot(row.state, row.run_lease, row.finalized_at)
            first = self.terminal.setdefault(row.id, snap)
            if first != snap:
                raise self._violation("TerminalIsFinal", f"job {row.id}: {first} became {snap}")

    def check_key_preserved(self, rows: dict[int, JobRow]) -> None:
        for job in self.jobs.values():
            row = rows[job.db_id]
            if (row.ordering_key, row.queue, row.enqueue_shard) != (job.key, job.queue, job.shard):
                raise self._violation(
                    "KeyedJobsStayInKeyLane", f"job {job.sid}: now {(row.ordering_key, row.queue, row.enqueue_shard)}, enqueued as {(job.key, job.queue, job.shard)}"
                )
            if job.spec_key and self._lane_of(row.queue, row.enqueue_shard) != spec.key_lane(self.trace.constants, job.spec_key):
                raise self._violation("KeyedJobsStayInKeyLane", f"job {job.sid} key {job.spec_key} outside its key lane")

    def check_spec_mirror(self, rows: dict[int, JobRow], heads: dict, claims: dict) -> None:
        """The state abstracted from the database equals the spec mirror's state."""
        if not self.spec_exact:
            return
        db_state = abstract_lifecycle_state(
            self.trace.constants,
            jobs=[
                {
                    "status": SPEC_STATUS[rows[j.db_id].state],
                    "key": j.spec_key,
                    "lane": self._lane_of(j.queue, j.shard),
                    "seq": rows[j.db_id].lane_seq,
                    "lease": rows[j.db_id].run_lease,
                    "fresh": self.fresh(j),
                    "done_lease": j.done_lease if rows[j.db_id].state in TERMINAL else 0,
                }
                for j in sorted(self.jobs.values(), key=lambda j: j.sid)
            ],
            lanes={
                self._lane_of(*lane): (heads.get(lane, 1), claims.get(lane, 0))
                for lane in {(q, s) for q in self.pq.physical_queues for s in range(SHARDS)}
            },
            holding={w: wk.holding for w, wk in self.workers.items() if wk.holding is not None},
        )
        if db_state != self.spec_state:
            diffs = [
                f"{name}: database {a} spec {b}"
                for name, a, b in zip(spec.LifecycleState._fields, db_state, self.spec_state)
                if a != b
            ]
            raise self._violation("SpecMirrorAgrees", "; ".join(diffs))
        bad = spec.violated_invariants(self.trace.constants, db_state)
        if bad:
            raise self._violation(bad[0], f"spec invariant(s) {bad} false on the database state")
        self.trace.states.append(db_state)


def lifecycle_machine_class(database_url: str, *, spec_mode: bool = True) -> type[LifecycleMachine]:
    return bind_machine(
        LifecycleMachine, database_url, spec_mode=spec_mode, recorded=[], action_counts=Counter(),
        name="LifecycleMachineSpec" if spec_mode else "LifecycleMachineFull",
    )


# complete.sql passes the caller's lease to lease_batch, whose UPDATE matches it;
# the mutant passes the row's own lease instead, so any lease completes.
LEASE_GUARD = "ARRAY[%(lease)s::bigint]"


class UnguardedCompleteMachine(LifecycleMachine):
    """The pre-lease-guard design (spec cfg ...BrokenNoLeaseGuard): ``complete``
    matches (id, running) and ignores the run lease. Verification only: the
    machine must catch it.

    ``shortest`` keeps the shortest violation raised in any run (generation or
    shrinking), so a test can assert on it even when Hypothesis' replay of an
    example is not step-for-step reproducible (the claim breaks ties between
    lanes with random() in scan order, and the plan may change under load)."""

    shortest: LifecycleViolation | None = None

    def _violation(self, name: str, detail: str) -> LifecycleViolation:
        found = super()._violation(name, detail)
        best = type(self).shortest
        if best is None or len(found.steps) < len(best.steps):
            type(self).shortest = found
        return found

    def __init__(self) -> None:
        super().__init__()
        core = self.client.core
        guarded = core.q("complete")
        assert LEASE_GUARD in guarded, "the complete statement changed; update this mutant"
        schema = guarded.split(".lease_batch(")[0].split()[-1]
        unguarded = guarded.replace(
            LEASE_GUARD, f"ARRAY[(SELECT j.run_lease FROM {schema}.jobs AS j WHERE j.id = %(id)s::bigint)]")
        original_q = core.q
        core.q = lambda name: unguarded if name == "complete" else original_q(name)  # type: ignore[method-assign]


def unguarded_machine_class(database_url: str) -> type[LifecycleMachine]:
    return bind_machine(
        UnguardedCompleteMachine, database_url, spec_mode=True, recorded=[], action_counts=Counter(), shortest=None
    )
