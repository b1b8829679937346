"""``awa work --metrics-port``: the OpenTelemetry metrics as a Prometheus endpoint.

Installs a global MeterProvider whose reader is OpenTelemetry's Prometheus
exporter and serves ``/metrics`` from prometheus_client's HTTP server (a
daemon thread). OpenTelemetry names turn into Prometheus names: dots become
underscores, counters get ``_total`` and units a suffix, e.g.
``awa.job.completed`` is ``awa_job_completed_total`` and
``awa.job.run_time`` is ``awa_job_run_time_seconds``; ``awa.queue`` becomes
the label ``awa_queue``. Needs the ``metrics`` extra.
"""

from __future__ import annotations

from awa.cli.common import usage_error

EXTRA_HINT = "pip install 'awa-partitioned[metrics]'"


def serve_metrics(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise usage_error(f"--metrics-port must be between 1 and 65535, got {port}")
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import start_http_server
    except ImportError as exc:
        raise usage_error(f"--metrics-port needs the metrics extra ({EXTRA_HINT}): {exc}") from None
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise usage_error(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
