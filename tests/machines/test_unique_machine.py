"""The unique-jobs machine on PostgreSQL: concurrent producers never leave two live jobs with one key."""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from tests.machines._support import close_machine, machine_settings
from tests.machines.unique_machine import unique_machine_class

pytestmark = pytest.mark.machines


def test_unique_machine_holds_every_invariant(database_factory) -> None:
    machine = unique_machine_class(database_factory(migrated=True))
    try:
        run_state_machine_as_test(machine, settings=machine_settings(examples_scale=0.4, steps=12))
    finally:
        close_machine(machine)


def test_without_the_unique_index_the_machine_finds_two_live_jobs(database_factory) -> None:
    """The machine has teeth: with the index dropped, a concurrent round leaves duplicates."""
    import psycopg

    url = database_factory(migrated=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX awa.idx_awa_jobs_unique")
    machine = unique_machine_class(url)
    try:
        with pytest.raises(AssertionError):
            run_state_machine_as_test(
                machine, settings=machine_settings(examples_scale=0.2, steps=4, database=None, report_multiple_bugs=False)
            )
    finally:
        close_machine(machine)
