"""A state machine for unique jobs on PostgreSQL, with truly concurrent producers.

Rules insert keyed jobs from several threads at once (single inserts and
one-row COPY batches on their own connections), COPY whole batches (which may
hold a key twice), and move jobs on: claim and complete, claim and fail,
cancel by key, retention pruning. The reference is the set of keys held
(jobs in the default unique states: scheduled, available, running,
completed, retryable).

Invariants after every step:
* OneLiveJobPerKey: no two jobs in unique states share a key;
* HeldKeysMatch: the keys held in the database are the reference's;
* a concurrent round gives each key exactly one winner when it was free and
  none when it was held, and every loser raised UniqueConflict;
* a refused COPY batch leaves the lane heads as they were (its lane numbers
  are reserved in its own transaction).
"""

from __future__ import annotations

import threading
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from awa.client import Client
from awa.errors import UniqueConflict
from tests.machines._db import read_enqueue_heads
from tests.machines._support import bind_machine, reset_database, user_tables

KEYS = st.sampled_from(["a", "b", "c", "d"])
HOLDING = ("scheduled", "available", "running", "completed", "retryable")
KIND = "uniq"


class UniqueMachine(RuleBasedStateMachine):
    database_url: str
    check_conn: object
    client_conn: object

    @initialize()
    def reset(self) -> None:
        reset_database(self.check_conn, user_tables(self.check_conn))
        self.client = Client(self.database_url)
        self.held: set[str] = set()
        self.rounds = 0

    def teardown(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()

    # -- producers ---------------------------------------------------------

    @rule(keys=st.lists(KEYS, min_size=1, max_size=6), threads=st.integers(2, 4))
    def produce_concurrently(self, keys: list[str], threads: int) -> None:
        wins: Counter[str] = Counter()
        conflicts: Counter[str] = Counter()
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(threads)

        def producer(n: int) -> None:
            try:
                with Client(self.database_url) as c:
                    barrier.wait()
                    for i, key in enumerate(keys):
                        try:
                            if (i + n) % 2:
                                c.insert({"k": key}, kind=KIND, unique_opts={})
                            else:
                                c.enqueue_many_copy([{"k": key}], kind=KIND, unique_opts={})
                            won = True
                        except UniqueConflict:
                            won = False
                        with lock:
                            (wins if won else conflicts)[key] += 1
            except BaseException as exc:  # noqa: BLE001 - reported in the main thread
                errors.append(exc)

        workers = [threading.Thread(target=producer, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors, errors
        for key in set(keys):
            attempts = keys.count(key) * threads
            expected_wins = 0 if key in self.held else 1
            assert wins[key] == expected_wins, (key, wins, self.held)
            assert conflicts[key] == attempts - expected_wins
        self.held |= set(keys)
        self.rounds += 1

    @rule(keys=st.lists(KEYS, min_size=1, max_size=5))
    def copy_batch(self, keys: list[str]) -> None:
        ok = len(set(keys)) == len(keys) and not (set(keys) & self.held)
        before = self._lanes()
        try:
            self.client.insert_many_copy([{"k": k} for k in keys], kind=KIND, unique_opts={})
            assert ok, f"batch {keys} accepted while {sorted(self.held)} held"
            self.held |= set(keys)
        except UniqueConflict:
            assert not ok, f"batch {keys} refused with {sorted(self.held)} held"
            # One transaction: the lane numbers it reserved go with it.
            assert self._lanes() == before, f"refused batch {keys} left lane heads {before} -> {self._lanes()}"

    def _lanes(self) -> list[tuple]:
        return sorted((*lane, n) for lane, n in read_enqueue_heads(self.check_conn).items())

    # -- lifecycle ---------------------------------------------------------

    def _claim(self, key: str):
        row = self.check_conn.execute(
            "SELECT id FROM awa.jobs WHERE args->>'k' = %s AND state = 'available'", (key,)
        ).fetchone()
        if row is None:
            return None
        target = None
        for job in self.client.claim("default", 50):
            if job.id == row[0]:
                target = job
            else:  # claimed on the way: complete it (running and completed both hold the key)
                assert self.client.complete(job.id, job.run_lease)
        return target

    @rule(key=KEYS)
    def complete(self, key: str) -> None:
        job = self._claim(key)
        if job is not None:
            assert self.client.complete(job.id, job.run_lease)  # completed keeps the key

    @rule(key=KEYS)
    def fail(self, key: str) -> None:
        job = self._claim(key)
        if job is not None:
            assert self.client.fail(job.id, job.run_lease, "boom")
            self.held.discard(key)

    @rule(key=KEYS)
    def cancel_by_key(self, key: str) -> None:
        job = self.client.cancel_by_unique_key(KIND, args={"k": key})
        live = self.check_conn.execute(
            "SELECT count(*) FROM awa.jobs WHERE args->>'k' = %s AND state IN ('completed')", (key,)
        ).fetchone()[0]
        if job is not None:
            self.held.discard(key)
        elif key in self.held:
            assert live == 1  # only a completed job holds it: cancel finds no live job

    @rule()
    def prune(self) -> None:
        self.check_conn.execute("UPDATE awa.jobs SET finalized_at = finalized_at - interval '2 hours' "
                                "WHERE finalized_at IS NOT NULL")
        self.client.prune_jobs(completed_retention_hours=1, failed_retention_hours=1)
        completed = {r[0] for r in self.check_conn.execute(
            "SELECT args->>'k' FROM awa.jobs WHERE state = 'completed'").fetchall()}
        assert not completed
        self.held = {k for k in self.held if self._holds(k)}

    def _holds(self, key: str) -> bool:
        return self.check_conn.execute(
            "SELECT count(*) FROM awa.jobs WHERE args->>'k' = %s AND state::text = ANY(%s)", (key, list(HOLDING))
        ).fetchone()[0] > 0

    # -- invariants --------------------------------------------------------

    @invariant()
    def one_live_job_per_key(self) -> None:
        rows = self.check_conn.execute(
            "SELECT unique_key, count(*) FROM awa.jobs WHERE state::text = ANY(%s) GROUP BY 1 HAVING count(*) > 1",
            (list(HOLDING),),
        ).fetchall()
        assert not rows, f"OneLiveJobPerKey: {rows}"

    @invariant()
    def held_keys_match(self) -> None:
        held = {r[0] for r in self.check_conn.execute(
            "SELECT args->>'k' FROM awa.jobs WHERE state::text = ANY(%s)", (list(HOLDING),)).fetchall()}
        assert held == self.held, f"HeldKeysMatch: database {sorted(held)}, reference {sorted(self.held)}"


def unique_machine_class(database_url: str) -> type:
    return bind_machine(UniqueMachine, database_url)
