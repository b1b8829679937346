"""awa.testing.AwaTestClient on real PostgreSQL: handlers run inline, outcomes written as the worker writes them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

import awa
from awa.testing import AwaTestClient, JobRow, NoJob, WorkResult


@dataclass
class SendEmail:
    to: str
    subject: str


def run(database_url, body, *, sync: bool = False):
    async def main() -> None:
        client = awa.Client(database_url) if sync else awa.AsyncClient(database_url)
        tc = AwaTestClient(client)
        await tc.migrate()
        await tc.clean()
        try:
            await body(tc)
        finally:
            result = client.close()
            if result is not None:
                await result

    asyncio.run(main())


def test_work_one_outcomes(database_url):
    async def body(tc: AwaTestClient) -> None:
        await tc.insert(SendEmail(to="a@x", subject="ok"))

        async def ok(job):
            assert isinstance(job.args, SendEmail) and job.args.to == "a@x" and job.queue == "default"
            job.set_progress(50, "half")
            assert await job.flush_progress()

        result = await tc.work_one(SendEmail, handler=ok)
        assert isinstance(result, WorkResult) and result.is_completed() and isinstance(result.job, JobRow)
        assert result.job.state == "completed" and result.job.kind == "send_email"
        assert result.job.progress == {"percent": 50, "message": "half"}

        await tc.insert(SendEmail(to="b@x", subject="retry"), max_attempts=2)

        async def flaky(job):
            raise ValueError("temporary failure")

        first = await tc.work_one(SendEmail, handler=flaky)
        assert first.is_retryable() and "temporary failure" in first.error
        assert first.job.errors[-1]["error"] == "ValueError: temporary failure"
        # not due yet (backoff): nothing to run
        assert (await tc.work_one(SendEmail, handler=flaky)).is_no_job()

        await tc.insert(SendEmail(to="c@x", subject="last"), max_attempts=1, queue="last")
        exhausted = await tc.work_one(SendEmail, handler=lambda job: awa.RetryAfter(60), queue="last")
        assert exhausted.is_failed() and exhausted.job.state == awa.JobState.Failed

        for outcome, check in (
            (lambda job: awa.Snooze(300), "is_snoozed"),
            (lambda job: awa.Cancel("not needed"), "is_cancelled"),
            (lambda job: (_ for _ in ()).throw(awa.TerminalError("bad input")), "is_failed"),
        ):
            await tc.insert(SendEmail(to="d@x", subject=check), queue=check)
            result = await tc.work_one(SendEmail, handler=outcome, queue=check)
            assert getattr(result, check)(), (check, result)
        cancelled = await tc.enqueued(queue="is_cancelled")
        assert cancelled[0].state == awa.JobState.Cancelled
        snoozed = (await tc.enqueued(queue="is_snoozed"))[0]
        assert snoozed.state == awa.JobState.Scheduled and snoozed.attempt == 0

        empty = await tc.work_one(SendEmail, handler=ok, queue="nothing-here")
        assert empty.is_no_job() and empty.job is NoJob and not empty.job

    run(database_url, body)


def test_work_one_uses_registered_handlers_and_drain(database_url):
    async def body(tc: AwaTestClient) -> None:
        seen = []

        @tc.client.task(SendEmail, queue="mail")
        def send(job):  # a sync handler runs on a thread, as in the worker
            seen.append(job.args.to)

        for to in ("1@x", "2@x", "3@x"):
            await tc.insert(SendEmail(to=to, subject="s"), queue="mail")
        await tc.insert({"x": 1}, kind="other", queue="mail2")
        results = await tc.drain("mail")
        assert [r.outcome for r in results] == ["completed"] * 3 and seen == ["1@x", "2@x", "3@x"]
        with pytest.raises(awa.UnknownJobKind, match="unknown job kind: other"):
            await tc.work_one(queue="mail2")
        # the job was put back, unchanged
        [back] = await tc.enqueued(queue="mail2")
        assert back.state in ("available", "scheduled") and back.attempt == 0
        # a kind filter that does not match leaves the job in the queue
        assert (await tc.work_one(SendEmail, handler=send, queue="mail2")).is_no_job()

    run(database_url, body)


def test_assert_enqueued_and_clean(database_url):
    async def body(tc: AwaTestClient) -> None:
        await tc.insert(SendEmail(to="a@x", subject="s"), queue="mail")
        await tc.insert(SendEmail(to="b@x", subject="s"), queue="mail")
        jobs = await tc.assert_enqueued(SendEmail, queue="mail", count=2)
        assert [j.args["to"] for j in jobs] == ["a@x", "b@x"]
        await tc.assert_enqueued("send_email", args={"to": "b@x"}, count=1)
        with pytest.raises(AssertionError, match="expected 3 job"):
            await tc.assert_enqueued(SendEmail, count=3)
        with pytest.raises(AssertionError, match="no job of kind 'nope'"):
            await tc.assert_enqueued("nope")
        with pytest.raises(AssertionError, match="expected no job of kind 'send_email'"):
            await tc.assert_not_enqueued(SendEmail)
        await tc.clean()
        await tc.assert_not_enqueued(SendEmail)
        assert await tc.enqueued() == []

    run(database_url, body)


def test_wraps_the_sync_client_too(database_url):
    async def body(tc: AwaTestClient) -> None:
        await tc.insert(SendEmail(to="s@x", subject="sync"))

        def handler(job):
            job.set_progress(10)
            assert job.flush_progress_sync()

        result = await tc.work_one(SendEmail, handler=handler)
        assert result.is_completed() and result.job.progress == {"percent": 10}

    run(database_url, body, sync=True)


def test_clean_empties_every_table_but_schedules_and_policies():
    """A table the baseline adds is emptied by clean() or kept on purpose:
    otherwise clean() fails on its foreign keys or leaves state behind."""
    import re
    from pathlib import Path

    from awa import testing

    kept = {"cron_jobs", "cron_fires", "key_policies", "leader_leases"}  # configuration and leadership
    baseline = Path(testing.__file__).parent / "storage" / "sql" / "migrations" / "0001_baseline"
    tables = set()
    for sql in baseline.glob("*.sql"):
        tables |= set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?__schema__\.(\w+)", sql.read_text()))
    assert tables - kept == set(testing.CLEANED_TABLES)
