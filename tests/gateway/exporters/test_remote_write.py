"""App metrics over OTLP → the gateway → Prometheus remote write, queried back from Prometheus."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otelml.gateway.exporters.remote_write import metric_name, translate
from tests.conftest import loopback_config, running_gateway
from tests.prometheus_server import running_prometheus


def test_metrics_reach_a_real_prometheus_by_remote_write(tmp_path: Path) -> None:
    with running_prometheus(tmp_path, []) as prometheus:
        config = loopback_config(
            exporters={"metrics": {"remote_write": f"{prometheus.url}/api/v1/write"}},
            queue={"directory": str(tmp_path / "queue")},
        )
        with running_gateway(config) as gw:
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=gw.grpc_endpoint, insecure=True),
                export_interval_millis=60_000,
            )
            provider = MeterProvider(
                resource=Resource.create({"service.name": "shop", "service.instance.id": "i-1"}),
                metric_readers=[reader],
            )
            meter = provider.get_meter("test")
            orders = meter.create_counter("orders")
            latency = meter.create_histogram("checkout.latency", unit="s")
            queue = meter.create_up_down_counter("queue.depth")
            for i in range(7):
                orders.add(1, {"region": "eu" if i % 2 else "us"})
                latency.record(0.05 * (i + 1))
            queue.add(5)
            queue.add(-2)
            provider.force_flush()
            provider.shutdown()
            result = prometheus.wait_for(
                'orders_total{job="shop",instance="i-1"}', lambda r: len(r) == 2, timeout=20
            )
            assert {r["metric"]["region"]: r["value"][1] for r in result} == {"eu": "3", "us": "4"}
            count = prometheus.query('checkout_latency_count{job="shop"}')
            assert count[0]["value"][1] == "7"
            latency_sum = prometheus.query('checkout_latency_sum{job="shop"}')
            assert float(latency_sum[0]["value"][1]) == pytest.approx(0.05 * sum(range(1, 8)))
            assert prometheus.query('queue_depth{job="shop"}')[0]["value"][1] == "3"
            samples = gw.samples()
            sent = samples[
                (
                    "otelml_exporter_sent_data_points_total",
                    frozenset({"exporter": "metrics"}.items()),
                )
            ].value
            accepted = samples[
                (
                    "otelml_receiver_accepted_data_points_total",
                    frozenset({"transport": "grpc"}.items()),
                )
            ].value
            # 4 points (2 counter series, 1 histogram, 1 up-down counter) per export; the SDK
            # exports on flush and again on shutdown. Every accepted point was sent.
            assert sent == accepted and accepted in (4, 8)


def test_without_a_metrics_exporter_metrics_are_refused_clearly() -> None:
    with running_gateway() as gw:
        response = httpx.post(
            f"{gw.http_url}/v1/metrics",
            content=b"",
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 404


def test_names_and_delta_temporality() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    assert metric_name("http.server.duration") == "http_server_duration"
    assert metric_name("9lives") == "_9lives"
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="d")
    metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    metric.sum.data_points.add(as_int=3)
    _, written, dropped = translate(request.SerializeToString())
    assert written == 0 and dropped == {"delta_temporality": 1}
