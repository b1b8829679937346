"""The batch paths (complete_many, heartbeat_many) against a lease oracle.

Spec (PartitionedQueueLifecycle): an attempt is identified by (job, lease);
only the current attempt of a running job may finalize or heartbeat it
(StaleAttemptNeverFinalizes), and a rescued attempt never becomes current
again (each claim bumps the lease). The machine claims, lets attempts go
stale on a clock that *moves* (so a stale heartbeat that writes would be
visible as a fresher heartbeat_at than the oracle's), rescues and re-claims,
and sends batches that mix current and stale (job, lease) pairs, and single
retries (finish_attempt) by current or stale attempts. After every
step each row's state, lease, attempt and heartbeat_at must equal the oracle's,
and every batch's answers must be the oracle's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.machines._db import read_jobs
from tests.machines._support import bind_machine, close_machine, machine_settings, reset_machine

pytestmark = pytest.mark.machines

EPOCH = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
TIMEOUT = 30.0
QUEUE = "batch"
MAX_JOBS = 6


@dataclass
class Model:
    state: str = "available"
    lease: int = 0
    attempt: int = 0
    heartbeat_at: dt.datetime | None = None
    run_at: dt.datetime | None = None


class BatchLeaseMachine(RuleBasedStateMachine):
    database_url = ""
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _tables: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        from awa.client import Client

        reset_machine(self, truncate=True)
        self.client_conn.execute("SELECT setseed(0.5)")
        self.now = EPOCH
        self.client = Client(self.client_conn, clock=lambda: self.now, jitter=lambda: 0.0)
        self.jobs: dict[int, Model] = {}
        self.pairs: list[tuple[int, int]] = []  # every attempt ever handed out

    def current(self, job_id: int, lease: int) -> bool:
        m = self.jobs[job_id]
        return m.state == "running" and m.lease == lease

    # -- rules --------------------------------------------------------------------

    @precondition(lambda self: len(self.jobs) < MAX_JOBS)
    @rule(n=st.integers(1, 3))
    def enqueue(self, n: int) -> None:
        n = min(n, MAX_JOBS - len(self.jobs))
        for job in self.client.insert_many_copy([{"i": i} for i in range(n)], kind="b", queue=QUEUE, max_attempts=25):
            self.jobs[job.id] = Model()

    @rule(limit=st.integers(1, 3))
    def claim(self, limit: int) -> None:
        got = self.client.claim([QUEUE], limit)
        available = sorted(i for i, m in self.jobs.items() if m.state == "available")
        assert len(got) == min(limit, len(available)), (len(got), limit, available)
        for row in got:
            m = self.jobs[row.id]
            assert m.state == "available", f"claimed job {row.id} in state {m.state}"
            m.state, m.lease, m.attempt, m.heartbeat_at = "running", m.lease + 1, m.attempt + 1, self.now
            assert row.run_lease == m.lease, (row.run_lease, m.lease)
            self.pairs.append((row.id, row.run_lease))

    @rule(seconds=st.sampled_from([1, 7, 20]))
    def tick(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    @rule()
    def rescue_and_promote(self) -> None:
        """Time passes beyond the heartbeat timeout; rescue; the backoff passes; promote."""
        self.now += dt.timedelta(seconds=TIMEOUT + 1)
        limit = self.now - dt.timedelta(seconds=TIMEOUT)
        expected = sorted(i for i, m in self.jobs.items() if m.state == "running" and m.heartbeat_at < limit)
        rescued = self.client.rescue_expired(heartbeat_timeout=TIMEOUT)
        assert sorted(r[0] for r in rescued) == expected, (rescued, expected)
        for i in expected:
            m = self.jobs[i]
            m.state, m.heartbeat_at, m.run_at = "retryable", None, self.now + dt.timedelta(seconds=2.0**m.attempt)
        self.now += dt.timedelta(seconds=2.0 ** max([self.jobs[i].attempt for i in expected] or [0]) + 1)
        due = sorted(i for i, m in self.jobs.items() if m.state == "retryable" and m.run_at <= self.now)
        assert self.client.promote_due() == len(due)
        for i in due:
            self.jobs[i].state = "available"

    @precondition(lambda self: self.pairs)
    @rule(data=st.data())
    def heartbeat_many(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(self.pairs), min_size=1, max_size=4, unique=True), label="pairs")
        flags = self.client.heartbeat_many(chosen)
        assert flags == [self.current(i, lease) for i, lease in chosen], (chosen, flags)
        for (i, _lease), ok in zip(chosen, flags):
            if ok:
                self.jobs[i].heartbeat_at = self.now

    @precondition(lambda self: self.pairs)
    @rule(data=st.data())
    def complete_many(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(self.pairs), min_size=1, max_size=4, unique=True), label="pairs")
        flags = self.client.complete_many(chosen)
        assert flags == [self.current(i, lease) for i, lease in chosen], (chosen, flags)
        for (i, _lease), ok in zip(chosen, flags):
            if ok:
                self.jobs[i].state, self.jobs[i].heartbeat_at = "completed", None

    @precondition(lambda self: self.pairs)
    @rule(data=st.data())
    def retry_now(self, data: st.DataObject) -> None:
        """finish_attempt (retry, no delay) by one attempt, current or stale."""
        job_id, lease = data.draw(st.sampled_from(self.pairs), label="pair")
        ok = self.client.retry(job_id, lease, after_seconds=0, error="again")
        assert ok == self.current(job_id, lease), (job_id, lease, ok)
        if ok:
            self.jobs[job_id].state, self.jobs[job_id].heartbeat_at = "available", None

    def zombies(self) -> list[tuple[int, int]]:
        """Stale pairs of jobs that run again under a newer lease (a rescued attempt's worker)."""
        return [(i, lease) for i, lease in self.pairs if self.jobs[i].state == "running" and self.jobs[i].lease != lease]

    @precondition(lambda self: self.zombies())
    @rule(data=st.data(), call=st.sampled_from(["complete_many", "heartbeat_many"]))
    def zombie_batch(self, data: st.DataObject, call: str) -> None:
        """A batch from the worker that lost its attempts, beside the current holder's pairs."""
        zombie = data.draw(st.sampled_from(self.zombies()), label="zombie pair")
        others = data.draw(st.lists(st.sampled_from(self.pairs), max_size=2, unique=True), label="pairs")
        chosen = [zombie, *[p for p in others if p != zombie]]
        flags = getattr(self.client, call)(chosen)
        assert flags == [self.current(i, lease) for i, lease in chosen], (call, chosen, flags)
        for (i, _lease), ok in zip(chosen, flags):
            if ok:
                m = self.jobs[i]
                if call == "complete_many":
                    m.state, m.heartbeat_at = "completed", None
                else:
                    m.heartbeat_at = self.now

    # -- the oracle -----------------------------------------------------------------

    @invariant()
    def rows_match_the_oracle(self) -> None:
        rows = read_jobs(self.check_conn)
        assert sorted(rows) == sorted(self.jobs)
        for i, m in self.jobs.items():
            r = rows[i]
            got = (r.state, r.run_lease, r.attempt, r.heartbeat_at)
            assert got == (m.state, m.lease, m.attempt, m.heartbeat_at), f"job {i}: database {got}, oracle {m}"


def test_batch_paths_honour_the_lease_on_a_moving_clock(database_factory) -> None:
    cls = bind_machine(BatchLeaseMachine, database_factory(migrated=True), _tables=None)
    try:
        run_state_machine_as_test(cls, settings=machine_settings(examples_scale=2, steps=30))
    finally:
        close_machine(cls)
