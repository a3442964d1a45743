"""Every string that leaves the gateway or becomes a label passes redaction: canaries in each
field a request carries reach no sink (Tempo, Loki, remote write), no /metrics label, no log."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv
from tests.conftest import loopback_config, running_gateway
from tests.sinks import GrpcSink, HttpSink

EMAIL = "jane.canary@example.com"
CARD = "4111111111111111"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


class RemoteWriteSink:
    """Records every remote-write request, snappy-decompressed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.bodies.append(bytes(cramjam.snappy.decompress_raw(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _traces() -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "shop"
    scope = resource_spans.scope_spans.add()
    scope.scope.name, scope.scope.version = f"lib-{EMAIL}", f"v-{CARD}"
    scope.scope.attributes.add(key="owner").value.string_value = EMAIL
    span = scope.spans.add(
        trace_id=b"\x01" * 16,
        span_id=b"\x01" * 8,
        name=f"pay {EMAIL}",
        trace_state=f"vendor=card-{CARD}",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
    )
    span.attributes.add(key=semconv.MODEL_NAME).value.string_value = "r"
    span.attributes.add(key=f"{semconv.FEATURE_PREFIX}spent_by_{EMAIL}").value.double_value = 1.0
    span.attributes.add(key=f"{semconv.FEATURE_PREFIX}card_{CARD}").value.double_value = 2.0
    event = span.events.add(name=f"mailed {EMAIL}")
    event.attributes.add(key="to").value.string_value = EMAIL
    link = span.links.add(trace_id=b"\x02" * 16, span_id=b"\x02" * 8, trace_state=f"k={CARD}")
    link.attributes.add(key="who").value.string_value = EMAIL
    return request.SerializeToString()


def _logs() -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    scope = resource_logs.scope_logs.add()
    scope.scope.name = f"logger-{EMAIL}"
    record = scope.log_records.add(
        time_unix_nano=1, severity_text=f"WARN {EMAIL}", event_name=f"card.{CARD}"
    )
    record.body.string_value = "fine"
    record.attributes.add(key=semconv.MODEL_NAME).value.string_value = "r"
    return request.SerializeToString()


def _metrics() -> bytes:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "shop"
    metric = resource_metrics.scope_metrics.add().metrics.add(name="orders", description=EMAIL)
    point = metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=3.0)
    point.attributes.add(key="customer").value.string_value = EMAIL
    point.attributes.add(key="card").value.string_value = CARD
    return request.SerializeToString()


def test_canaries_in_every_field_are_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tempo, loki, remote_write = GrpcSink(), HttpSink(), RemoteWriteSink()
    config = loopback_config(
        exporters={
            "traces": {"endpoint": tempo.endpoint, "protocol": "grpc"},
            "logs": {"endpoint": loki.url, "protocol": "http/protobuf"},
            "metrics": {"remote_write": remote_write.url},
        },
        queue={"directory": str(tmp_path / "queue")},
        redaction={"enabled": True},
    )
    try:
        with running_gateway(config) as gw:
            for path, body in (
                ("/v1/traces", _traces()),
                ("/v1/logs", _logs()),
                ("/v1/metrics", _metrics()),
            ):
                response = httpx.post(f"{gw.http_url}{path}", content=body, headers=PROTOBUF)
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 20
            while not (tempo.spans and loki.log_records and remote_write.bodies):
                assert time.monotonic() < deadline, "not delivered"
                time.sleep(0.1)
            exposition = gw.scrape()
            samples = gw.samples()
    finally:
        tempo.stop()
        loki.stop()
        remote_write.stop()
    forwarded = b"".join(tempo.raw + loki.raw + remote_write.bodies)
    everything = forwarded + exposition.encode() + caplog.text.encode()
    for canary in (EMAIL, CARD):
        assert canary.encode() not in everything, canary
    assert b"[REDACTED:email]" in b"".join(remote_write.bodies)
    # The e-mail pattern takes the whole dotted key ("ml.feature.spent_by_jane…"): no feature.
    assert "spent_by" not in exposition
    assert 'feature="card_[REDACTED:card]"' in exposition
    assert 'span_name="pay [REDACTED:email]"' in exposition
    values = {
        dict(labels)["pattern"]: sample.value
        for (name, labels), sample in samples.items()
        if name == "otelml_redaction_values_total"
    }
    # e-mail: scope name and attribute, span name, a key, event name and attribute, link
    # attribute; log scope name and severity text; metric description and point attribute.
    # card: scope version, trace_state, a key, link trace_state; event_name; a point attribute.
    assert (values["email"], values["card"]) == (11, 6)
