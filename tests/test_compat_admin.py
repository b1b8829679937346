"""awa-pg's admin calls, names and behaviours on real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

import awa
from awa.client import AsyncClient, Client
from awa.errors import ValidationError


@pytest.fixture
def client(database_url):
    with Client(database_url) as c:
        yield c


def _failed(client, n: int, *, kind: str = "k", queue: str = "q") -> list[int]:
    client.insert_many_copy([{"i": i} for i in range(n)], kind=kind, queue=queue, max_attempts=1)
    ids = []
    for job in client.claim(queue, n):
        assert client.fail(job.id, job.run_lease, "boom")
        ids.append(job.id)
    return sorted(ids)


def test_job_state_is_awa_pg_int_enum_with_old_names_as_aliases():
    S = awa.JobState
    assert [s.name for s in S] == ["Scheduled", "Available", "Running", "Completed", "Retryable", "Failed", "Cancelled"]
    assert issubclass(S, int) and [int(s) for s in S] == list(range(7))
    assert S.COMPLETED is S.Completed and S("completed") is S.Completed and S(3) is S.Completed
    assert S.Completed.value == "completed" == S.Completed.label and hash(S.Completed) == hash(3)
    assert str(S.Completed) == "completed" and f"{S.Failed}" == "failed" and repr(S.Retryable) == "JobState.Retryable"
    assert S.Completed == "completed" and S.Completed != "failed" and S.Failed.terminal and not S.Running.terminal
    with pytest.raises(ValueError):
        S("done")


def test_cancel_and_retry_by_id_return_the_job_or_none(client):
    job = client.insert({"n": 1}, kind="k", queue="admin")
    cancelled = client.cancel(job.id)
    assert cancelled.id == job.id and cancelled.state == awa.JobState.Cancelled
    assert client.cancel(job.id) is None  # finished already
    assert client.cancel(10**12) is None
    retried = client.retry(job.id)
    assert retried.state == awa.JobState.Available and retried.attempt == 0
    assert client.retry(job.id) is None  # not failed or cancelled
    with pytest.raises(TypeError, match="run_lease"):
        client.retry(job.id, after_seconds=5)


def test_worker_side_cancel_and_retry_still_take_a_lease(client):
    client.insert({"n": 1}, kind="k", queue="lease")
    [running] = client.claim("lease", 1)
    assert client.retry(running.id, running.run_lease, after_seconds=0) is True
    assert client.retry(running.id, running.run_lease) is False  # stale lease now
    client.promote_due()
    [again] = client.claim("lease", 1)
    assert client.cancel(again.id, running.run_lease) is False
    assert client.cancel(again.id, again.run_lease) is True
    assert client.get_job(again.id).state == awa.JobState.Cancelled


def test_get_job_of_a_missing_id_raises_awa_error(client):
    with pytest.raises(awa.AwaError, match="^job not found: 424242$"):
        client.get_job(424242)
    assert client.find_job(424242) is None


def test_retry_failed_by_queue_and_by_kind(client):
    ids = _failed(client, 3, kind="a", queue="rf")
    other = _failed(client, 2, kind="b", queue="rf2")
    with pytest.raises(ValidationError, match="Specify exactly one of kind or queue"):
        client.retry_failed()
    with pytest.raises(ValueError, match="Specify exactly one of kind or queue"):
        client.retry_failed(kind="a", queue="rf")
    result = client.retry_failed(queue="rf")
    assert isinstance(result, awa.RetryFailedResult)
    assert [j.id for j in result.jobs] == ids and result.matched == 3 and result.pruned_failed_count is None
    assert all(j.state == awa.JobState.Available and j.attempt == 0 for j in result.jobs)
    assert [j.id for j in client.claim("rf", 10)] == ids  # back in their lane, claimable
    by_kind = client.retry_failed(kind="b")
    assert [j.id for j in by_kind.jobs] == other
    assert client.retry_failed(kind="b").matched == 0


def test_discard_failed_deletes_only_failed_jobs_of_the_kind(client):
    _failed(client, 2, kind="gone", queue="d")
    _failed(client, 1, kind="kept", queue="d")
    keep = client.insert({"n": 1}, kind="gone", queue="d")
    client.flush_admin_metadata()
    assert client.discard_failed("gone") == 2
    assert client.discard_failed("gone") == 0
    assert client.get_job(keep.id).state == awa.JobState.Available
    [stat] = client.queue_stats("d")
    assert stat.failed == 1  # the rolled-up count followed the delete


def test_drain_queue_cancels_what_has_not_started(client):
    client.insert_many_copy([{"i": i} for i in range(4)], kind="k", queue="drain")
    client.insert({"later": 1}, kind="k", queue="drain", run_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    [running] = client.claim("drain", 1)
    client.insert({"x": 1}, kind="k", queue="other")
    assert client.drain_queue("drain") == 4  # 3 available + 1 scheduled; the running one stays
    assert client.get_job(running.id).state == awa.JobState.Running
    [stat] = client.queue_stats("drain")
    assert stat.available == 0 and stat.scheduled == 0 and stat.total_queued == 0 and stat.running == 1
    assert client.claim("drain", 10) == []
    assert client.drain_queue("drain") == 0
    assert client.queue_stats("other")[0].available == 1


def test_queue_stat_has_awa_pg_fields(client):
    client.insert_many_copy([{"i": i} for i in range(3)], kind="k", queue="st")
    for job in client.claim("st", 2):
        client.complete(job.id, job.run_lease)
    client.insert({"s": 1}, kind="k", queue="st", run_at="2030-01-01T00:00:00Z")
    client.flush_admin_metadata()
    [stat] = client.queue_stats("st")
    assert (stat.available, stat.scheduled, stat.total_queued) == (1, 1, 2)
    assert stat.completed_last_hour == 2 and stat.waiting_external == 0
    assert stat.lag_seconds is not None and stat.paused is False


def test_run_at_accepts_iso_strings_and_rejects_garbage(client):
    job = client.insert({"n": 1}, kind="k", run_at="2030-01-02T03:04:05+00:00")
    assert job.state == awa.JobState.Scheduled
    naive = client.insert({"n": 2}, kind="k", run_at="2030-01-02 03:04:05")
    assert naive.run_at == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    [copied] = client.insert_many_copy([{"n": 3}], kind="k", run_at="2030-01-02T03:04:05Z")
    assert copied.state == awa.JobState.Scheduled
    before = len(client.list_jobs())
    with pytest.raises(ValidationError, match="run_at must be a datetime or RFC3339 string"):
        client.insert({"n": 4}, kind="k", run_at="next tuesday")
    assert len(client.list_jobs()) == before


def test_health_check_without_and_with_a_runtime(client):
    health = client.health_check()
    assert isinstance(health, awa.HealthCheck)
    assert health.postgres_connected is True and health.poll_loop_alive is False and health.healthy is False

    @client.task("noop", queue="hc")
    def noop(job):
        return None

    client.insert({"n": 1}, kind="noop", queue="hc")
    client.start([("hc", 3)], poll_interval_ms=50)
    try:
        deadline = time.monotonic() + 10
        while client.list_jobs(state="completed", queue="hc") == [] and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.health_check()
        assert health.healthy and health.poll_loop_alive and health.heartbeat_alive and not health.shutting_down
        assert isinstance(health.queues["hc"], awa.QueueHealth)
        assert health.queues["hc"].max_workers == 3 and health.queues["hc"].in_flight == 0
    finally:
        client.shutdown()


def test_health_check_of_an_unreachable_database():
    with Client("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", min_connections=0) as c:
        c.executor.pool.timeout = 1.0
        health = c.health_check()
    assert health.postgres_connected is False and health.healthy is False


@pytest.mark.parametrize("option", ["queue_storage_schema", "queue_storage_queue_slot_count", "storage_transition_role"])
def test_start_refuses_awa_pg_storage_options_by_name(client, option):
    @client.task("noop")
    def noop(job):
        return None

    with pytest.raises(ValidationError, match=f"{option} configure awa-pg's queue-storage engine"):
        client.start([("default", 1)], **{option: 16})
    with pytest.raises(ValidationError, match="callback_rescue_interval_ms is awa-pg's setting for external callbacks"):
        client.start([("default", 1)], callback_rescue_interval_ms=1000)
    assert client.worker_runtime is None


def test_retention_start_options_keep_awa_pg_names_and_checks(client):
    @client.task("noop")
    def noop(job):
        return None

    with pytest.raises(ValidationError, match="completed_retention_hours must be a non-negative finite number"):
        client.start([("default", 1)], completed_retention_hours=-1)
    with pytest.raises(ValidationError, match="failed_retention_hours must be a non-negative finite number"):
        client.start([("default", 1)], failed_retention_hours=float("nan"))
    client.start(
        [{"name": "default", "max_workers": 1, "retention": {"completed_hours": 1, "failed_hours": 2}}],
        completed_retention_hours=12, failed_retention_hours=48,
    )
    client.shutdown()


def test_async_admin_calls(database_url):
    async def main() -> None:
        async with AsyncClient(database_url) as c:
            job = await c.insert({"n": 1}, kind="k", queue="aq", run_at="2030-01-01T00:00:00+02:00")
            assert job.state == awa.JobState.Scheduled
            assert (await c.cancel(job.id)).state == awa.JobState.Cancelled
            assert (await c.retry(job.id)).state == awa.JobState.Available
            with pytest.raises(awa.AwaError, match="job not found: 99999"):
                await c.get_job(99999)
            assert await c.drain_queue("aq") == 1
            assert len((await c.retry_failed(queue="aq")).jobs) == 0
            assert await c.discard_failed("k") == 0
            assert await c.flush_admin_metadata() is None
            health = await c.health_check()
            assert health.postgres_connected and not health.poll_loop_alive

    asyncio.run(main())


def test_awa_pg_exception_names_are_awa_errors():
    for name in ("SchemaNotMigrated", "UnknownJobKind", "SerializationError", "TerminalError", "DatabaseError",
                 "ValidationError"):
        assert issubclass(getattr(awa, name), awa.AwaError), name
    assert issubclass(awa.ValidationError, ValueError)


def test_small_awa_pg_spellings(client):
    client.pause_queue("pq", paused_by="ops", create=True)  # unknown queues need create= (issue 20)
    assert client.queue_stats("pq")[0].paused is True
    client.resume_queue("pq")

    @client.worker(dict, kind="w", queue="wq")
    def handle(job):
        return None

    assert client.handler_for("w").queue == "wq"
    client.set_queue_dlq("dq", True)
    client.insert({"n": 1}, kind="k", queue="dq", max_attempts=1)
    [job] = client.claim("dq", 1)
    client.fail(job.id, job.run_lease, "boom")
    assert client.dlq_depth_by_queue() == [("dq", 1)]
    assert client.get_dlq_job(job.id).original_run_lease == job.run_lease


def test_args_that_do_not_encode_raise_serialization_error(client):
    with pytest.raises(awa.SerializationError, match="not JSON-serialisable") as caught:
        client.insert({"when": object()}, kind="k", queue="ser")
    assert isinstance(caught.value, ValidationError)
    with pytest.raises(awa.SerializationError, match="metadata is not JSON-serialisable"):
        client.insert({"n": 1}, kind="k", queue="ser", metadata={"x": object()})
    assert client.list_jobs(queue="ser") == []
