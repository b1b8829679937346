"""Per-key concurrency as a state machine on real PostgreSQL (spec: KeyConcurrency).

Jobs of a few keys go into two partitions and two priorities (so one key sits
in several lanes, each with its own claim head). Steps: inserts (explicit
concurrency keys and ordering keys the policy adopts), bursts of claims from
several threads on their own connections, two claim transactions held open
at once and then committed (the spec's Check, Check, Take, Take; also on one
key waiting in both partitions), a hot key whose surplus is parked and read
again, every end of an attempt, rescue after expiry, and limit changes (also a
lower limit while more jobs of a key than it run). After every step, and
from an observer thread during every burst, the invariant is read from the
database:

* KeyLimit: no key has more running jobs than the policy's max_in_flight;
* the grants are exactly the running governed attempts (job id and lease);
* KeyLaneFifo: a key's jobs start in lane order (no job of a key has started
  while an earlier-numbered job of its key in its lane is still available);
* parking (ADR 0025): each parked key of a lane has exactly one head, its
  first parked job, and every available job a claim has examined (cursor to
  frontier) is parked;
* NoStrandedJob (the ``drain`` rule): with every attempt ended, claims take
  every available job (no parked job is forgotten).

``test_parked_head_machine`` drives one lane of one key at limit 1
through admin cancels of parked jobs (cancel_job unparks them, ADR 0031):
the key's next parked job becomes its head, and a new job of the key must be
parked behind it, not taken past it (KeyLaneFifo). Since cancels unpark, the
mutant ``key-park-overtakes`` (spec ``KeyConcurrencyBrokenParkOvertakes``) is
killed by a test that leaves a gone row parked on purpose:
``test_a_key_with_jobs_still_parked_holds_its_new_jobs_back``.

``test_the_machine_catches_check_then_claim`` applies the spec's broken
Serialised = FALSE to the database (key_try_lock always succeeds) and expects
the machine to fail.
"""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from awa.client import Client
from tests.machines._support import machine_settings, reset_database, user_tables

pytestmark = pytest.mark.machines

POLICY = "kq"
QUEUES = ["kq", "kq__p1"]
KEYS = ["a", "b", "c"]
T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)

VIOLATIONS = """
SELECT k.key, count(*), p.max_in_flight
FROM awa.jobs AS j
JOIN awa.key_policies AS p ON p.name = awa.logical_queue(j.queue)
CROSS JOIN LATERAL (SELECT coalesce(j.concurrency_key,
                                    CASE WHEN p.from_ordering_key THEN j.ordering_key END) AS key) AS k
WHERE j.state = 'running' AND k.key IS NOT NULL
GROUP BY k.key, p.max_in_flight
HAVING count(*) > p.max_in_flight
"""
RUNNING_GOVERNED = """
SELECT j.id, j.run_lease FROM awa.jobs AS j
JOIN awa.key_policies AS p ON p.name = awa.logical_queue(j.queue)
WHERE j.state = 'running'
  AND coalesce(j.concurrency_key, CASE WHEN p.from_ordering_key THEN j.ordering_key END) IS NOT NULL
"""
# KeyLaneFifo: a started job (running or completed keep their lane number)
# with an earlier job of its key in its lane still available.
OVERTAKEN = """
SELECT j.id, i.id FROM awa.jobs AS j
JOIN awa.key_policies AS p ON p.name = awa.logical_queue(j.queue)
JOIN awa.jobs AS i
  ON i.queue = j.queue AND i.priority = j.priority AND i.enqueue_shard = j.enqueue_shard
 AND i.lane_seq < j.lane_seq AND i.state = 'available'
 AND coalesce(i.concurrency_key, CASE WHEN p.from_ordering_key THEN i.ordering_key END)
     = coalesce(j.concurrency_key, CASE WHEN p.from_ordering_key THEN j.ordering_key END)
WHERE j.state IN ('running', 'completed')
"""
BAD_HEADS = """
SELECT queue, priority, enqueue_shard, key FROM awa.key_parked
GROUP BY queue, priority, enqueue_shard, key
HAVING count(*) FILTER (WHERE head) <> 1 OR min(lane_seq) <> min(lane_seq) FILTER (WHERE head)
"""
UNPARKED = """
SELECT j.id FROM awa.jobs AS j
JOIN awa.claim_heads AS c USING (queue, priority, enqueue_shard)
WHERE j.state = 'available' AND j.lane_seq > c.claim_seq AND j.lane_seq <= c.key_frontier
  AND NOT EXISTS (SELECT 1 FROM awa.key_parked AS p
                  WHERE p.queue = j.queue AND p.priority = j.priority AND p.enqueue_shard = j.enqueue_shard
                    AND p.job_id = j.id AND p.lane_seq = j.lane_seq)
"""
BROKEN_LOCK = (
    "CREATE OR REPLACE FUNCTION awa.key_try_lock(p_policy text, p_key bytea) RETURNS boolean "
    "LANGUAGE sql AS 'SELECT true'"
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def read_violations(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(VIOLATIONS).fetchall()


def make_machine(url: str, tables: list[str]):
    clock = Clock()
    clients = [Client(url, clock=clock, jitter=lambda: 0.0) for _ in range(4)]

    class KeyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.conn = psycopg.connect(url, autocommit=True)
            reset_database(self.conn, tables)
            clock.now = T0
            self.client = clients[0]
            self.client.create_key_policy(POLICY, 1, from_ordering_key=True, look_ahead=8)
            self.seen_during_bursts: list[tuple] = []

        def teardown(self) -> None:
            self.conn.close()

        def _running(self) -> list[tuple[int, int]]:
            return self.conn.execute(
                "SELECT id, run_lease FROM awa.jobs WHERE state = 'running' ORDER BY id").fetchall()

        @rule(key=st.sampled_from(KEYS + [None]), part=st.integers(0, 1), priority=st.integers(1, 2),
              explicit=st.booleans(), n=st.integers(1, 3))
        def insert(self, key, part, priority, explicit, n):
            for _ in range(n):
                if explicit:
                    self.client.insert({}, kind="k", queue=QUEUES[part], priority=priority, concurrency_key=key)
                else:
                    self.client.insert({}, kind="k", queue=QUEUES[part], priority=priority, ordering_key=key)

        def _insert_key(self, key, part, priority, explicit, n=1):
            kw = {"concurrency_key": key} if explicit else {"ordering_key": key}
            for _ in range(n):
                self.client.insert({}, kind="k", queue=QUEUES[part], priority=priority, **kw)

        @rule(key=st.sampled_from(KEYS), part=st.integers(0, 1), priority=st.integers(1, 2),
              explicit=st.booleans(), n=st.integers(2, 4), limit=st.integers(2, 4))
        def hot_key(self, key, part, priority, explicit, n, limit):
            """Several jobs of one key in one lane, then two claims that want more
            than the key may run: the surplus is parked (ADR 0025) and the
            second claim reads the parked head again."""
            self._insert_key(key, part, priority, explicit, n)
            self.client.claim(QUEUES, limit)
            self.client.claim(QUEUES, limit)

        @rule(key=st.sampled_from(KEYS), explicit=st.booleans(), priorities=st.tuples(st.integers(1, 2), st.integers(1, 2)))
        def contended_key(self, key, explicit, priorities):
            """One key waiting in both partitions, claimed by two open
            transactions at once (the spec's Check, Check, Take, Take)."""
            for part in (0, 1):
                self._insert_key(key, part, priorities[part], explicit)
            self.overlapping_claims(3, 0)

        @rule(key=st.sampled_from(KEYS), explicit=st.booleans(), n=st.integers(2, 3))
        def lower_under_load(self, key, explicit, n):
            """The limit goes up to n, n jobs of one key run, then the limit goes
            down to 1: the lower limit may apply only once the key drained."""
            self.client.set_key_limit(POLICY, n)
            self._insert_key(key, 0, 1, explicit, n)
            self.client.claim(QUEUES, 3 * n)
            self.client.set_key_limit(POLICY, 1)

        @rule(threads=st.integers(2, 4), limit=st.integers(1, 3))
        def claim_burst(self, threads, limit):
            start = threading.Barrier(threads + 1)
            done = threading.Event()
            errors: list[BaseException] = []

            def claimer(c: Client) -> None:
                try:
                    start.wait()
                    for _ in range(3):
                        c.claim(QUEUES, limit)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            def observer() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    start.wait()
                    while not done.is_set():
                        self.seen_during_bursts += read_violations(conn)

            workers = [threading.Thread(target=claimer, args=(clients[i],)) for i in range(threads)]
            watch = threading.Thread(target=observer)
            for t in (*workers, watch):
                t.start()
            for t in workers:
                t.join()
            done.set()
            watch.join()
            assert not errors, errors
            assert self.seen_during_bursts == []

        @rule(limit=st.integers(1, 3), first=st.integers(0, 1))
        def overlapping_claims(self, limit, first):
            """Two claim transactions open at once on different partitions."""
            a = psycopg.connect(url)
            b = psycopg.connect(url)
            try:
                for conn, queue in ((a, QUEUES[first]), (b, QUEUES[1 - first])):
                    conn.execute("SELECT id FROM awa.claim_jobs(ARRAY[%s], %s, %s, '1 hour', NULL)",
                                 [queue, limit, clock.now])
                a.commit()
                b.commit()
            finally:
                a.close()
                b.close()

        @rule(pick=st.integers(0, 50), end=st.sampled_from(["complete", "retry", "snooze", "fail", "cancel",
                                                            "admin_cancel"]))
        def finish(self, pick, end):
            running = self._running()
            if not running:
                return
            job_id, lease = running[pick % len(running)]
            c = self.client
            if end == "complete":
                c.complete(job_id, lease)
            elif end == "retry":
                c.retry(job_id, lease, after_seconds=0)
            elif end == "snooze":
                c.snooze(job_id, lease, 0)
            elif end == "fail":
                c.fail(job_id, lease, "boom")
            elif end == "cancel":
                c.cancel(job_id, lease)
            else:
                c.cancel_job(job_id)

        @rule(pick=st.integers(0, 50))
        def cancel_available(self, pick):
            """An admin cancel of a waiting job (it may be parked)."""
            waiting = self.conn.execute("SELECT id FROM awa.jobs WHERE state = 'available' ORDER BY id").fetchall()
            if waiting:
                self.client.cancel_job(waiting[pick % len(waiting)][0])

        @rule()
        def expire_and_rescue(self):
            clock.now += dt.timedelta(hours=1)
            self.client.rescue_expired(heartbeat_timeout=60)
            self.client.promote_due()

        @rule(n=st.integers(1, 3))
        def set_limit(self, n):
            self.client.set_key_limit(POLICY, n)

        @rule()
        def drain(self):
            """Every attempt ends, then claims must reach every available job."""
            for _ in range(60):
                running = self._running()
                for job_id, lease in running:
                    self.client.complete(job_id, lease)
                if not self.client.claim(QUEUES, 10) and not running:
                    break
            left = self.conn.execute("SELECT id FROM awa.jobs WHERE state = 'available'").fetchall()
            assert left == [], f"available jobs no claim takes: {left}"

        @invariant()
        def key_lane_fifo(self):
            assert self.conn.execute(OVERTAKEN).fetchall() == []

        @invariant()
        def parked_jobs_are_well_formed(self):
            assert self.conn.execute(BAD_HEADS).fetchall() == []
            assert self.conn.execute(UNPARKED).fetchall() == []

        @invariant()
        def key_limit(self):
            assert read_violations(self.conn) == []

        @invariant()
        def grants_are_the_running_governed_attempts(self):
            grants = set(self.conn.execute("SELECT job_id, run_lease FROM awa.key_grants()").fetchall())
            assert grants == set(self.conn.execute(RUNNING_GOVERNED).fetchall())

    return KeyMachine, clients


def make_parked_head_machine(url: str, tables: list[str]):
    client = Client(url, jitter=lambda: 0.0)

    class ParkedHeadMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.conn = psycopg.connect(url, autocommit=True)
            reset_database(self.conn, tables)
            client.create_key_policy(POLICY, 1, from_ordering_key=True, look_ahead=8)

        def teardown(self) -> None:
            self.conn.close()

        # One compound rule: single-purpose rules came out of a derandomised
        # search in runs of one kind and rarely in the order that matters.
        @rule(n=st.integers(0, 3), limit=st.integers(1, 3), cancel_head=st.booleans(), complete=st.booleans())
        def round(self, n, limit, cancel_head, complete):
            """Insert n jobs of key a, claim, maybe cancel the parked head, maybe end every attempt."""
            for _ in range(n):
                client.insert({}, kind="k", queue=POLICY, ordering_key="a")
            client.claim([POLICY], limit)
            if cancel_head:
                for (job_id,) in self.conn.execute("SELECT job_id FROM awa.key_parked WHERE head").fetchall():
                    client.cancel_job(job_id)
            if complete:
                for job_id, lease in self.conn.execute("SELECT id, run_lease FROM awa.jobs WHERE state = 'running'"):
                    client.complete(job_id, lease)

        @invariant()
        def key_lane_fifo(self):
            assert self.conn.execute(OVERTAKEN).fetchall() == []

        @invariant()
        def parked_jobs_are_well_formed(self):
            assert self.conn.execute(BAD_HEADS).fetchall() == []

    return ParkedHeadMachine, client


@pytest.fixture(scope="module")
def key_db(database_factory) -> str:
    return database_factory(migrated=True)


def _run(url: str, examples_scale: float = 1.0, **overrides) -> None:
    with psycopg.connect(url) as conn:
        tables = user_tables(conn)
    machine, clients = make_machine(url, tables)
    try:
        run_state_machine_as_test(machine, settings=machine_settings(examples_scale=examples_scale, deadline=None, **overrides))
    finally:
        for c in clients:
            c.close()


def test_key_concurrency_machine(key_db):
    _run(key_db)


def test_parked_head_machine(database_factory):
    url = database_factory(migrated=True)
    with psycopg.connect(url) as conn:
        tables = user_tables(conn)
    machine, client = make_parked_head_machine(url, tables)
    try:
        run_state_machine_as_test(machine, settings=machine_settings(deadline=None))
    finally:
        client.close()


def test_the_machine_catches_check_then_claim(database_factory):
    url = database_factory(migrated=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BROKEN_LOCK)
    # The defect is a race, so one search can miss it (seen once in a full
    # CI run on 2 busy cores); each try is a fresh search, and three misses
    # in a row fail the test.
    for _ in range(3):
        try:
            _run(url, examples_scale=8, phases=[Phase.generate])
        except AssertionError:
            return
    pytest.fail("three searches never saw the limit broken with the per-key lock removed")
