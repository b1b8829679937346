"""Maintenance leadership (ADR 0019) against an oracle: one live holder, and a
frozen holder loses the role once its lease expires.

Holders take or renew the lease with a long or a very short lease; ``freeze``
is a holder that stops renewing while real time passes beyond every short
lease (the database's clock decides expiry, so the machine sleeps). Oracle:

* a live long lease is never taken over by another holder, and its holder
  always renews it;
* after a freeze every short lease has expired: anyone may take it;
* a short lease not yet frozen past may or may not have expired (no claim);
* the row read back names the oracle's holder, live exactly when the oracle
  says it must be, and its ``term`` counts the changes of holder;
* release ends only the releaser's own live lease.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from awa.storage.core import StorageCore
from awa.storage.drivers import run_in
from tests.machines._support import bind_machine, close_machine, machine_settings, reset_machine

pytestmark = pytest.mark.machines

HOLDERS = ("a", "b", "c")
LONG_S, SHORT_S = 60.0, 0.05
ROLE = "maintenance"


class LeaderLeaseMachine(RuleBasedStateMachine):
    database_url = ""
    check_conn: psycopg.Connection
    client_conn: psycopg.Connection
    _tables: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        reset_machine(self)
        self.core = StorageCore("awa")
        self.holder: str | None = None
        self.kind: str | None = None  # "long" (live), "short" (maybe live), "expired"
        self.term = 0

    def run(self, op):
        return run_in(self.client_conn, op)

    @rule(who=st.sampled_from(HOLDERS), long=st.booleans())
    def acquire(self, who: str, long: bool) -> None:
        ok = self.run(self.core.acquire_leader_lease(ROLE, who, LONG_S if long else SHORT_S))
        if self.holder is None or self.holder == who or self.kind == "expired":
            assert ok, f"{who} was refused a lease that is free, expired or its own ({self.holder}, {self.kind})"
        elif self.kind == "long":
            assert not ok, f"{who} took over {self.holder}'s live lease"
        if ok:
            if self.holder != who:
                self.term += 1
            self.holder, self.kind = who, "long" if long else "short"

    @rule()
    def freeze(self) -> None:
        """Nobody renews for longer than a short lease."""
        time.sleep(SHORT_S * 2)
        if self.kind == "short":
            self.kind = "expired"

    @rule(who=st.sampled_from(HOLDERS))
    def release(self, who: str) -> None:
        ok = self.run(self.core.release_leader_lease(ROLE, who))
        if self.holder == who and self.kind == "long":
            assert ok, f"{who} could not release its live lease"
        elif self.holder != who:
            assert not ok, f"{who} released {self.holder}'s lease"
        if ok or self.holder == who:
            self.kind = "expired" if self.holder is not None else None

    @invariant()
    def the_row_is_the_oracle(self) -> None:
        rows = self.run(self.core.leader_leases())
        if self.holder is None:
            assert rows == []
            return
        [row] = rows
        assert row["holder"] == self.holder and row["term"] == self.term, (row, self.holder, self.term)
        if self.kind == "long":
            assert row["live"], row
        elif self.kind == "expired":
            assert not row["live"], row


def test_one_live_leader_and_a_frozen_one_is_replaced(database_factory) -> None:
    cls = bind_machine(LeaderLeaseMachine, database_factory(migrated=True), _tables=None)
    try:
        run_state_machine_as_test(cls, settings=machine_settings(examples_scale=1, steps=20))
    finally:
        close_machine(cls)
