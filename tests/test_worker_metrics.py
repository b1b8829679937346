"""Worker metrics on real PostgreSQL: OpenTelemetry instruments per physical queue, and
the Prometheus endpoint of `awa work --metrics-port` (by subprocess)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from awa.client import Client
from awa.routing import PartitionedQueue
from test_cli_helpers import cli_env
from worker_support.helpers import FAST, Ping, WorkerAsyncClient, run, wait_until

sdk = pytest.importorskip("opentelemetry.sdk.metrics")
export = pytest.importorskip("opentelemetry.sdk.metrics.export")


def _points(reader):
    sums, histograms = {}, {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for dp in metric.data.data_points:
                    key = (metric.name, tuple(sorted(dp.attributes.items())))
                    if hasattr(dp, "bucket_counts"):
                        histograms[key] = (dp.count, dp.sum)
                    else:
                        sums[key] = dp.value
    return sums, histograms


def test_claims_completions_failures_retries_latency_and_run_time_per_partition(database_url):
    reader = export.InMemoryMetricReader()
    meter = sdk.MeterProvider(metric_readers=[reader]).get_meter("awa-test")
    pq = PartitionedQueue("orders", 2)

    async def main():
        client = WorkerAsyncClient(database_url, meter=meter)

        @client.task(Ping, queue="orders")
        async def ping(job):
            if job.args.n < 0:
                raise ValueError("negative")
            return None

        for queue in pq.physical_queues[1:]:
            client.task(Ping, queue=queue)(ping)
        await client.insert_many_copy([Ping(i) for i in range(6)], opts=[pq.route_by_index(i) for i in range(6)])
        await client.insert(Ping(-1), queue="orders__p1", max_attempts=2)
        await client.start(pq.queue_configs(2), **FAST)
        try:
            async def settled():
                stats = {s.queue: s for s in await client.queue_stats()}
                return sum(s.completed for s in stats.values()) == 6 and stats["orders__p1"].failed == 1
            await wait_until(settled, timeout=20)
            snapshot = client.worker_runtime.metrics.snapshot()
        finally:
            await client.shutdown()
            await client.close()
        return snapshot

    snapshot = run(main())
    assert snapshot["completed"] == {"orders": 3, "orders__p1": 3}
    assert snapshot["claimed"] == {"orders": 3, "orders__p1": 5}  # 3 + two attempts of the failing one
    assert snapshot["failed"] == {"orders__p1": 2} and snapshot["retried"] == {"orders__p1": 1}
    sums, histograms = _points(reader)
    q0, q1 = (("awa.queue", "orders"),), (("awa.queue", "orders__p1"),)
    assert sums[("awa.job.completed", q0)] == 3 and sums[("awa.job.completed", q1)] == 3
    assert sums[("awa.job.claimed", q1)] == 5
    assert sums[("awa.job.failed", (("awa.outcome", "retryable"), ("awa.queue", "orders__p1")))] == 1
    assert sums[("awa.job.failed", (("awa.outcome", "failed"), ("awa.queue", "orders__p1")))] == 1
    assert sums[("awa.job.retried", q1)] == 1
    assert histograms[("awa.job.run_time", q0)][0] == 3 and histograms[("awa.job.run_time", q1)][0] == 5
    count, total = histograms[("awa.job.pickup_latency", q1)]
    assert count == 5 and total >= 0


def test_rescues_and_pruned_jobs_are_counted(database_url):
    reader = export.InMemoryMetricReader()
    meter = sdk.MeterProvider(metric_readers=[reader]).get_meter("awa-test")
    with Client(database_url) as plain:
        plain.insert({"n": 1}, kind="ping", queue="q")
        [stuck] = plain.claim("q", 1, deadline_ms=1)  # its deadline passes at once: the leader rescues it
        plain.insert({"n": 2}, kind="ping", queue="q")

    async def main():
        client = WorkerAsyncClient(database_url, meter=meter)

        @client.task(Ping, queue="q")
        async def ping(job):
            return None

        await client.start([("q", 2)], completed_retention_hours=0, cleanup_interval_ms=100, **FAST)
        try:
            async def done():
                m = client.worker_runtime.metrics.snapshot()
                return m.get("rescued") == {"q": 1} and m.get("pruned", {}).get("q", 0) >= 1
            await wait_until(done, timeout=20)
        finally:
            await client.shutdown()
            await client.close()

    run(main())
    sums, _ = _points(reader)
    assert sums[("awa.job.rescued", (("awa.queue", "q"),))] == 1
    assert sums[("awa.job.pruned", (("awa.queue", "q"), ("awa.state", "completed")))] >= 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_awa_work_serves_prometheus_metrics(database_url, tmp_path):
    pytest.importorskip("opentelemetry.exporter.prometheus")
    (tmp_path / "tasks.py").write_text(textwrap.dedent(
        """
        def register(client):
            @client.task("ping", queue="q")
            def ping(job):
                return None
        """))
    with Client(database_url) as client:
        client.insert_many_copy([{"i": i} for i in range(4)], kind="ping", queue="q")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "awa", "work", "--handlers", "tasks", "--metrics-port", str(port)],
                            cwd=tmp_path, env=cli_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                text = ""
            if 'awa_job_completed_total{awa_queue="q"' in text and "awa_job_run_time_seconds" in text:
                break
            time.sleep(0.3)
        assert 'awa_job_completed_total{awa_queue="q"' in text, text[-2000:]
        line = next(l for l in text.splitlines() if l.startswith('awa_job_completed_total{awa_queue="q"'))
        assert float(line.rsplit(" ", 1)[1]) == 4.0
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_metrics_port_without_the_extra_or_bad_is_a_usage_error(database_url, tmp_path):
    (tmp_path / "tasks.py").write_text("def register(client):\n    client.task('ping', queue='q')(lambda job: None)\n")
    bad = subprocess.run([sys.executable, "-m", "awa", "work", "--handlers", "tasks", "--metrics-port", "0"],
                         cwd=tmp_path, env=cli_env(database_url), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--metrics-port must be between 1 and 65535" in bad.stderr
    # Without the exporter installed (hidden by a meta path hook), a clear hint.
    hide = ("import sys, runpy; sys.modules['opentelemetry.exporter.prometheus'] = None; "
            "sys.argv = ['awa', 'work', '--handlers', 'tasks', '--metrics-port', '9']; runpy.run_module('awa', "
            "run_name='__main__')")
    missing = subprocess.run([sys.executable, "-c", hide], cwd=tmp_path, env=cli_env(database_url),
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "awa-partitioned[metrics]" in missing.stderr
