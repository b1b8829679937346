"""Enqueue metrics per routed physical queue, in-process and through OpenTelemetry."""

from __future__ import annotations

import pytest

from awa.client import Client


def test_metrics_count_per_routed_queue_not_batch_default(database_url):
    with Client(database_url) as client:
        client.enqueue_many_copy([{"i": i} for i in range(6)], kind="k", queue="logical",
                                 opts=[{"queue": "p1"}, {"queue": "p2"}] * 3)
        client.insert({"i": 9}, kind="k", queue="p1")
        client.insert_many_copy([{"i": 1}], kind="k", queue="logical")
        m = client.enqueue_metrics()
        assert {q: (c.jobs, c.batches) for q, c in m.items()} == {"p1": (4, 2), "p2": (3, 1), "logical": (1, 1)}


def test_metrics_export_to_opentelemetry(database_url):
    sdk = pytest.importorskip("opentelemetry.sdk.metrics")
    export = pytest.importorskip("opentelemetry.sdk.metrics.export")
    reader = export.InMemoryMetricReader()
    provider = sdk.MeterProvider(metric_readers=[reader])
    with Client(database_url, meter=provider.get_meter("awa-test")) as client:
        client.enqueue_many_copy([{"i": i} for i in range(5)], kind="k", queue="logical",
                                 opts=[{"queue": "p1"}] * 3 + [{"queue": "p2"}] * 2)
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for dp in metric.data.data_points:
                    points[(metric.name, dp.attributes["awa.queue"])] = dp.value
    assert points == {
        ("awa.enqueue.jobs", "p1"): 3,
        ("awa.enqueue.jobs", "p2"): 2,
        ("awa.enqueue.batches", "p1"): 1,
        ("awa.enqueue.batches", "p2"): 1,
    }
