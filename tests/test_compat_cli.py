"""awa-pg's command names by subprocess: awa job …, awa queue drain, awa dlq depth, awa migrate --version."""

from __future__ import annotations

import json

import pytest

from awa.client import Client, JobState
from test_cli_helpers import assert_one_line_error, run_awa


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def _fail(client, kind: str, queue: str, n: int = 1) -> list[int]:
    client.insert_many_copy([{"i": i} for i in range(n)], kind=kind, queue=queue, max_attempts=1)
    jobs = client.claim(queue, n)
    for job in jobs:
        client.fail(job.id, job.run_lease, "boom")
    return [j.id for j in jobs]


def test_job_alias_with_awa_pg_actions(client, database_url):
    ids = _fail(client, "a", "jq", 2)
    done = run_awa("job", "retry-failed", "--queue", "jq", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Retried 2 failed jobs"
    assert all(client.get_job(i).state == JobState.Available for i in ids)

    _fail(client, "gone", "jq2", 3)
    done = run_awa("job", "discard", "--kind", "gone", database_url=database_url)
    assert done.returncode == 0 and done.stdout.strip() == "Discarded 3 failed jobs of kind 'gone'"

    job = client.insert({"n": 1}, kind="k", queue="jq3")
    dump = run_awa("job", "dump", str(job.id), database_url=database_url)
    assert dump.returncode == 0 and json.loads(dump.stdout)["id"] == job.id
    listing = run_awa("job", "list", "--queue", "jq3", "--json", database_url=database_url)
    assert listing.returncode == 0 and json.loads(listing.stdout.splitlines()[0])["id"] == job.id
    cancel = run_awa("job", "cancel", str(job.id), database_url=database_url)
    assert cancel.returncode == 0 and client.get_job(job.id).state == JobState.Cancelled
    retry = run_awa("job", "retry", str(job.id), database_url=database_url)
    assert retry.returncode == 0 and client.get_job(job.id).state == JobState.Available

    bad = run_awa("job", "retry-failed", database_url=database_url)
    assert bad.returncode == 2 and "Specify exactly one of --kind or --queue" in bad.stderr
    assert_one_line_error(bad.stderr)


def test_queue_drain_and_dlq_depth(client, database_url):
    client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="dr")
    client.insert_many_copy([{"i": i} for i in range(2)], kind="k", queue="wide__p1")
    done = run_awa("queue", "drain", "dr", database_url=database_url)
    assert done.returncode == 0 and done.stdout.strip() == "Drained 3 jobs from queue 'dr'"
    wide = run_awa("queue", "drain", "wide", "--partitions", "2", database_url=database_url)
    assert wide.stdout.splitlines() == ["Drained 0 jobs from queue 'wide'", "Drained 2 jobs from queue 'wide__p1'"]
    assert client.queue_stats("dr")[0].available == 0

    client.set_queue_dlq("dq", True)
    _fail(client, "k", "dq", 2)
    depth = run_awa("dlq", "depth", database_url=database_url)
    assert depth.returncode == 0 and depth.stdout.splitlines() == ["Total: 2", "  dq: 2"]
    one = run_awa("dlq", "depth", "--queue", "dq", database_url=database_url)
    assert one.stdout.strip() == "dq: 2"


def test_migrate_version_and_sql_print_without_a_database():
    one = run_awa("migrate", "--version", "1")
    assert one.returncode == 0 and one.stdout.startswith("-- Migration V1: baseline")
    assert "CREATE TABLE awa.jobs" in one.stdout or 'CREATE TABLE "awa".jobs' in one.stdout
    out_of_range = run_awa("migrate", "--version", "9")
    assert out_of_range.returncode == 2 and "Version 9 is out of range. Valid versions: 1..1" in out_of_range.stderr
    everything = run_awa("migrate", "--sql")
    assert everything.returncode == 0 and everything.stdout == one.stdout
