"""The partition-count registry on real PostgreSQL: producers, workers, `awa` by subprocess."""

from __future__ import annotations

import logging
import textwrap

import psycopg
import pytest

from awa.client import Client
from awa.errors import PartitionCountMismatch, ValidationError
from awa.routing import PartitionedQueue
from awa.worker.partitions import served_widths
from awa.worker.config import plan_queues
from test_cli_helpers import assert_one_line_error, cli_env, run_awa
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run


def _rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT logical_queue, partitions FROM awa.queue_partitions ORDER BY 1").fetchall()


def test_first_producer_records_the_width_and_another_width_is_refused(database_url):
    with Client(database_url) as client:
        pq = client.partitioned_queue("mm", 8)
        assert pq == PartitionedQueue("mm", 8)
        assert client.partitioned_queue("mm", 8) == pq
        with pytest.raises(PartitionCountMismatch) as caught:
            client.partitioned_queue("mm", 4)
        assert "registered with 8 partitions" in str(caught.value) and "uses 4" in str(caught.value)
        assert isinstance(caught.value, ValidationError)
        assert client.partitioned_queue("mm") == pq  # the registered width
        with pytest.raises(ValidationError, match="no partition count is registered"):
            client.partitioned_queue("other")
        for bad in (0, -1, 40_000, 2.5, True):
            with pytest.raises(ValidationError):
                client.partitioned_queue("new", bad)
        assert client.queue_partitions() == {"mm": 8}
        assert client.set_queue_partitions("mm", 4) == 8
        assert client.queue_partitions("mm") == {"mm": 4}
    assert _rows(database_url) == [("mm", 4)]


def test_the_worker_infers_the_widths_it_serves():
    plan = plan_queues(
        PartitionedQueue("a", 4).queue_configs(1) + [("plain", 1)] + [PartitionedQueue("s", 3).shared_queue_config(2)]
        + [{"name": "b__p2", "max_workers": 1}],  # a partition alone: no width claimed for b
        global_max_workers=None, declared_queues=[],
    )
    assert served_widths(plan) == {"a": 4, "plain": 1, "s": 3, "b__p2": 1}


def test_a_worker_records_a_new_width_and_warns_about_another(database_url, caplog):
    async def main(width):
        client = WorkerAsyncClient(database_url)

        async def ping(job):
            return None

        for queue in PartitionedQueue("mm", width).physical_queues:
            client.task(Ping, queue=queue)(ping)
        await client.start(PartitionedQueue("mm", width).queue_configs(1), **FAST)
        mismatches = client.worker_runtime.width_mismatches
        await client.shutdown()
        await client.close()
        return mismatches

    assert run(main(8)) == {}
    assert _rows(database_url) == [("mm", 8)]
    with caplog.at_level(logging.WARNING, logger="awa.worker"):
        assert run(main(4)) == {"mm": 8}
    [record] = [r for r in caplog.records if "registered with 8 partitions" in r.getMessage()]
    assert "serves 4" in record.getMessage() and "mm__p4..mm__p7 are not served here" in record.getMessage()
    assert _rows(database_url) == [("mm", 8)]  # a worker never overwrites the registry


HANDLERS = textwrap.dedent(
    """
    def charge(job):
        return None

    def register(client):
        for i in range(8):
            client.task("charge", queue="mm" if i == 0 else f"mm__p{i}")(charge)
    """
)


def test_cli_enqueue_work_and_stats_agree_on_the_registered_width(database_url, tmp_path):
    (tmp_path / "mm_tasks.py").write_text(HANDLERS)
    env = cli_env(database_url)
    lines = "".join(f'{{"kind": "charge", "args": {{"i": {i}}}, "ordering_key": "c{i}"}}\n' for i in range(40))

    first = run_awa("enqueue", "--queue", "mm", "--partitions", "8", input=lines, env=env)
    assert first.returncode == 0, first.stderr
    assert _rows(database_url) == [("mm", 8)]

    refused = run_awa("enqueue", "--queue", "mm", "--partitions", "4", input=lines, env=env)
    assert refused.returncode == 2
    assert_one_line_error(refused.stderr)
    assert "registered with 8 partitions" in refused.stderr and "uses 4" in refused.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM awa.jobs").fetchone()[0] == 40  # nothing written

    work = run_awa("work", "--handlers", "mm_tasks", "--queue", "mm", "--partitions", "4", "--until-empty",
                   env=env, cwd=tmp_path)
    assert work.returncode == 2 and "registered with 8 partitions" in work.stderr

    stats = run_awa("stats", "--queue", "mm", "--partitions", "4", env=env)
    assert stats.returncode == 0
    with Client(database_url) as client:
        outside = {s.queue: s.available for s in client.queue_stats() if s.queue in PartitionedQueue("mm", 8)
                   and s.queue not in PartitionedQueue("mm", 4)}
    assert sum(outside.values()) > 0
    assert f"{sum(outside.values())} unfinished job(s) of mm sit outside its 4 partitions" in stats.stderr
    assert "its recorded count is 8" in stats.stderr
    # Without --partitions, stats takes the registered width: all 8 rows and no warning.
    default = run_awa("stats", "--queue", "mm", env=env)
    assert "mm (all 8)" in default.stdout and "outside" not in default.stderr

    shown = run_awa("queue", "partitions", "mm", env=env)
    assert shown.returncode == 0 and "mm: 8 partitions" in shown.stdout
    changed = run_awa("queue", "partitions", "mm", "4", env=env)
    assert changed.returncode == 0 and "(was 8)" in changed.stdout
    assert "outside the new width" in changed.stderr
    bad = run_awa("queue", "partitions", "mm", "0", env=env)
    assert bad.returncode == 2
    assert _rows(database_url) == [("mm", 4)]


def test_workers_registering_one_width_at_once_all_get_it(database_url):
    """Workers starting together register a new logical queue concurrently:
    each gets the recorded width back, and exactly one of them created it."""
    import threading

    from awa.storage.drivers import run_in

    for round_ in range(5):
        barrier = threading.Barrier(4)
        results: list[object] = []

        def register(name: str = f"race{round_}") -> None:
            with Client(database_url) as client, psycopg.connect(database_url) as conn:
                barrier.wait()
                try:
                    results.append(run_in(conn, client.core.register_partitions(name, 4)))
                except Exception as exc:  # noqa: BLE001 - reported below
                    results.append(exc)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [(4, False)] * 3 + [(4, True)], results
