"""The runtime's belief in the maintenance lease (``LeaderLease``) against
specs/Leadership.tla's invariants, on PostgreSQL with real time.

Two ``LeaderLease`` objects (the code every worker runtime uses) share one
database. A worker may freeze between the database's answer to its
``acquire_leader_lease`` and reading it (the spec's ``Acquire`` then
``Reply`` with time passing in between); time also passes on its own. After
every step, with the row read *before* each worker's ``held()`` is asked:

* ``BelieverHoldsLiveLease``: a worker whose ``held()`` is true is the row's
  holder and the row is live;
* ``OneBeliever``: at most one worker's ``held()`` is true;
* a worker is never refused a row that is free, its own or surely expired
  (the spec's ``Grants``), and the row names the last worker granted it.

Refusal of another holder's live lease is the job of
``test_leader_lease_machine`` (long leases, so no timing margin is needed).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from awa.storage.core import StorageCore
from awa.storage.drivers import AsyncExecutor, run_in
from awa.worker.maintenance import ROLE, LeaderLease
from awa.worker.store import WorkerStore
from tests.machines._support import bind_machine, close_machine, machine_settings, reset_machine

pytestmark = pytest.mark.machines

LEASE_MS = 200
FROZEN_S = 0.25  # longer than the lease: a frozen worker's granted lease has expired when it reads the reply
WORKERS = (0, 1)


class FreezableStore:
    """The worker's real store; ``freeze_s`` stops the worker after the
    database has answered and before the answer is read."""

    def __init__(self, store: WorkerStore) -> None:
        self.store = store
        self.freeze_s = 0.0

    async def acquire_leader_lease(self, role: str, holder: str, ttl_s: float) -> bool:
        ok = await self.store.acquire_leader_lease(role, holder, ttl_s)
        if self.freeze_s:
            time.sleep(self.freeze_s)  # the whole process stops, event loop included
        return ok

    async def release_leader_lease(self, role: str, holder: str) -> bool:
        return await self.store.release_leader_lease(role, holder)


class LeaderBeliefMachine(RuleBasedStateMachine):
    database_url = ""
    check_conn = None
    client_conn = None
    loop: asyncio.AbstractEventLoop
    executor: AsyncExecutor
    _tables: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        reset_machine(self)
        self.core = StorageCore("awa")
        store = WorkerStore(self.core, type(self).executor)
        self.stores = [FreezableStore(store) for _ in WORKERS]
        self.leases = [LeaderLease(s, LEASE_MS, holder=f"w{i}") for i, s in zip(WORKERS, self.stores)]  # type: ignore[arg-type]
        self.holder: int | None = None  # oracle: the row's holder
        self.expires = 0.0  # oracle: monotonic time from which the row has surely expired

    def _acquire(self, w: int, frozen: bool) -> None:
        before = time.monotonic()
        may_take = self.holder in (None, w) or before >= self.expires  # the spec's Grants
        self.stores[w].freeze_s = FROZEN_S if frozen else 0.0
        try:
            ok = self.loop.run_until_complete(self.leases[w].acquire())
        finally:
            self.stores[w].freeze_s = 0.0
        if may_take:
            assert ok, f"w{w} was refused a lease that is free, expired or its own"
        if ok:
            self.holder = w
            self.expires = time.monotonic() + LEASE_MS / 1000

    @rule(w=st.sampled_from(WORKERS))
    def acquire(self, w: int) -> None:
        self._acquire(w, frozen=False)

    @rule(w=st.sampled_from(WORKERS))
    def acquire_then_freeze_before_the_reply(self, w: int) -> None:
        self._acquire(w, frozen=True)

    @rule(fraction=st.sampled_from((0.3, 0.6, 1.1)))
    def time_passes(self, fraction: float) -> None:
        time.sleep(LEASE_MS / 1000 * fraction)

    @invariant()
    def beliefs_match_the_row(self) -> None:
        rows = run_in(self.check_conn, self.core.leader_leases())
        believers = [w for w in WORKERS if self.leases[w].held()]  # asked after the row was read
        assert len(believers) <= 1, f"OneBeliever: {believers} all believe they lead"
        for w in believers:
            [row] = rows
            assert row["holder"] == f"w{w}" and row["live"], f"BelieverHoldsLiveLease: w{w} believes, row {row}"
        if self.holder is not None:
            [row] = rows
            assert row["holder"] == f"w{self.holder}", (row, self.holder)


def test_a_worker_believes_only_in_its_own_live_lease(database_factory) -> None:
    url = database_factory(migrated=True)
    loop = asyncio.new_event_loop()
    executor = AsyncExecutor(url, name="belief-machine", min_size=1, max_size=1)
    cls = bind_machine(LeaderBeliefMachine, url, _tables=None, loop=loop, executor=executor)
    try:
        run_state_machine_as_test(cls, settings=machine_settings(examples_scale=0.4, steps=12))
    finally:
        close_machine(cls)
        loop.run_until_complete(executor.close())
        loop.close()
