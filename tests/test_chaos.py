"""The chaos suite in the test suite: ``scripts/chaos.py --profile ci`` (issue 20).

Every scenario (kill -9 of a worker with jobs in its handlers, PostgreSQL
restarted fast and immediate, COPYs terminated mid-way, the maintenance leader
SIGSTOPped with jobs in its handlers) runs on the script's own throwaway
PostgreSQL, under producers and ``awa work`` processes, and must meet every
target: nothing lost, nothing stuck, no failed producer call that left rows,
no worker crash, recovery within its limit, and "ran twice" only for jobs
exposed to the fault (see the script's docstring for the bound). About a
minute on two idle cores; the short and full profiles run with ``make chaos``.
"""

from __future__ import annotations

import io

import pytest

from scripts import chaos

pytestmark = pytest.mark.slow


def test_chaos_ci_profile_meets_every_target():
    rows = chaos.run("ci")
    out = io.StringIO()
    chaos.print_table(rows, out)
    table = out.getvalue()
    print(table)
    assert [r.scenario for r in rows] == list(chaos.SCENARIOS), table
    for r in rows:
        where = f"{r.scenario}:\n{table}"
        assert r.faults >= 1, f"the fault was not injected in {where}"
        assert r.committed > 0, where
        assert r.lost == 0 and r.stuck == 0, where
        assert r.completed == r.committed, where
        assert r.failed_calls_with_rows == 0, where
        assert not r.worker_crash, where
        assert r.unexpected_twice == 0 and r.ran_twice <= r.exposed, where
        if r.scenario in ("kill9", "sigstop_leader", "restart_fast", "restart_immediate"):
            assert r.recovery_s is not None and r.recovery_s <= r.recovery_limit_s, where
        if r.scenario in ("kill9", "sigstop_leader"):
            assert r.exposed >= 1, f"nothing of the victim's was rescued in {where}"
        if r.scenario == "terminate_copy":
            assert r.ran_twice == 0, where
        assert r.ok, where
