"""Job-level admin on real PostgreSQL: keyset pages, retry by id, and `awa jobs` by subprocess."""

from __future__ import annotations

import json

import psycopg
import pytest

from awa.client import Client, JobState
from awa.errors import ValidationError
from test_cli_helpers import assert_one_line_error, run_awa


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def test_pages_walk_every_job_once_newest_first_while_jobs_arrive(client):
    client.insert_many_copy([{"i": i} for i in range(25)], kind="k", queue="q")
    seen, cursor, pages = [], None, 0
    while True:
        page = client.list_jobs_page(limit=10, cursor=cursor)
        seen.extend(j.id for j in page.jobs)
        pages += 1
        if pages == 1:  # newer jobs never shift the pages below the cursor
            client.insert_many_copy([{"late": i} for i in range(5)], kind="k", queue="q")
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3 and len(seen) == 25 and seen == sorted(seen, reverse=True)
    assert client.list_jobs(limit=100)[0].args == {"late": 4}


def test_pages_filter_by_state_queue_and_kind(client):
    client.insert_many_copy([{"i": i} for i in range(6)], kind="a", queue="q1")
    client.insert_many_copy([{"i": i} for i in range(4)], kind="b", queue="q2")
    for job in client.claim("q1", 3):
        client.fail(job.id, job.run_lease, "boom")
    failed = client.list_jobs_page(state="failed", limit=2)
    assert len(failed.jobs) == 2 and failed.next_cursor is not None
    rest = client.list_jobs_page(state=JobState.FAILED, limit=2, cursor=failed.next_cursor)
    assert len(rest.jobs) == 1 and rest.next_cursor is None
    assert {j.kind for j in client.list_jobs(kind="b")} == {"b"}
    assert len(client.list_jobs(state="available", queue="q1")) == 3
    assert len(client.list_jobs(state="available")) == 7
    assert client.list_jobs(state="available", queue="nowhere") == []
    assert client.list_jobs(state="running") == []


@pytest.mark.parametrize("kwargs", [
    {"state": "exploded"}, {"limit": 0}, {"limit": True}, {"cursor": "abc"}, {"cursor": -3}, {"queue": ""},
])
def test_bad_listing_arguments_are_validation_errors(client, kwargs):
    with pytest.raises(ValidationError):
        client.list_jobs_page(**kwargs)


def test_retry_job_brings_failed_and_cancelled_jobs_back_and_nothing_else(client):
    jobs = client.insert_many_copy([{"i": i} for i in range(4)], kind="k", queue="q")
    a, b, c, _ = client.claim("q", 4)
    client.fail(a.id, a.run_lease, "boom")
    client.cancel(b.id, b.run_lease)
    client.complete(c.id, c.run_lease)
    again = client.retry_job(a.id)
    assert again.state is JobState.AVAILABLE and again.attempt == 0 and again.errors[-1]["error"] == "boom"
    assert again.run_lease == a.run_lease  # leases stay monotonic: the next claim bumps it
    assert client.retry_job(b.id).state is JobState.AVAILABLE
    assert client.retry_job(c.id) is None  # completed
    assert client.retry_job(jobs[3].id) is None  # running
    assert client.retry_job(10**9) is None
    claimed = {j.id: j for j in client.claim("q", 10)}
    assert set(claimed) == {a.id, b.id} and claimed[a.id].run_lease == a.run_lease + 1


def _cli(database_url, *args):
    return run_awa(*args, database_url=database_url)


def test_awa_jobs_list_show_cancel_retry(database_url, client):
    client.set_queue_dlq("dead")
    jobs = client.insert_many_copy([{"n": i} for i in range(3)], kind="charge", queue="shop")
    [dead] = client.insert_many_copy([{"n": 9}], kind="charge", queue="dead", max_attempts=1)
    first, second = client.claim("shop", 2)
    traceback_text = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: card declined'
    client.fail(first.id, first.run_lease, traceback_text)
    [d] = client.claim("dead", 1)
    client.retry(d.id, d.run_lease, error="KeyError: 'sku'")

    listed = _cli(database_url, "jobs", "list", "--state", "failed")
    assert listed.returncode == 0, listed.stderr
    assert str(first.id) in listed.stdout and "ValueError: card declined" in listed.stdout
    assert "Traceback" not in listed.stdout

    page = _cli(database_url, "jobs", "list", "--limit", "1", "--json")
    lines = [json.loads(line) for line in page.stdout.splitlines()]
    assert lines[0]["id"] == jobs[2].id and lines[-1]["next_cursor"] == str(jobs[2].id)
    page2 = _cli(database_url, "jobs", "list", "--limit", "1", "--json", "--cursor", lines[-1]["next_cursor"])
    assert json.loads(page2.stdout.splitlines()[0])["id"] == jobs[1].id

    shown = _cli(database_url, "jobs", "show", str(first.id))
    assert shown.returncode == 0
    assert '{"n": 0}' in shown.stdout and "attempt 1 at" in shown.stdout and 'File "x.py", line 1' in shown.stdout
    shown_dead = _cli(database_url, "jobs", "show", str(dead.id), "--json")
    assert json.loads(shown_dead.stdout)["state"] == "dead_lettered"
    missing = _cli(database_url, "jobs", "show", "999999")
    assert missing.returncode == 1
    assert_one_line_error(missing.stderr)

    cancelled = _cli(database_url, "jobs", "cancel", str(jobs[2].id), str(first.id))
    assert cancelled.returncode == 1  # the failed one cannot be cancelled
    assert f"cancelled job {jobs[2].id}" in cancelled.stdout
    assert f"job {first.id}: it is failed" in cancelled.stderr

    retried = _cli(database_url, "jobs", "retry", str(first.id), str(jobs[2].id), str(dead.id))
    assert retried.returncode == 0, retried.stderr
    assert client.get_job(first.id).state is JobState.AVAILABLE
    assert client.get_job(jobs[2].id).state is JobState.AVAILABLE  # cancelled, then retried
    assert client.get_job(dead.id).state is JobState.AVAILABLE and client.dlq_depth() == 0
    assert client.get_job(second.id).state is JobState.RUNNING
    not_failed = _cli(database_url, "jobs", "retry", str(second.id))
    assert not_failed.returncode == 1 and "it is running" in not_failed.stderr


def test_awa_dlq_list_shows_the_errors_last_line(database_url, client):
    client.set_queue_dlq("dead")
    client.insert({"n": 1}, kind="charge", queue="dead", max_attempts=1)
    [job] = client.claim("dead", 1)
    client.retry(job.id, job.run_lease, error="Traceback (most recent call last):\n  File 'a'\nValueError: boom")
    listed = _cli(database_url, "dlq", "list")
    assert listed.returncode == 0
    assert "ValueError: boom" in listed.stdout and "Traceback" not in listed.stdout


def test_awa_jobs_list_rejects_a_bad_cursor_and_changes_nothing(database_url, client):
    client.insert({"n": 1}, kind="charge", queue="q")
    bad = _cli(database_url, "jobs", "list", "--cursor", "nope")
    assert bad.returncode == 2
    assert_one_line_error(bad.stderr)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM awa.jobs WHERE state = 'available'").fetchone()[0] == 1
