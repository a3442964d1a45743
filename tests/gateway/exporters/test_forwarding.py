"""Forwarding: traces to a Tempo stand-in (gRPC), logs to a Loki stand-in (HTTP), nothing lost."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway
from tests.gateway.otlp_builders import traces
from tests.sinks import GrpcSink, HttpSink

FAST_RETRY = {"initial_interval": "100ms", "max_interval": "500ms"}


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _send_spans(gw: RunningGateway, n: int) -> set[tuple[str, str]]:
    provider = TracerProvider(resource=Resource.create({"service.name": "fwd"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=gw.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("test")
    sent = set()
    for i in range(n):
        with tracer.start_as_current_span(
            "predict", attributes={semconv.MODEL_NAME: "f", semconv.FEATURE_PREFIX + "x": float(i)}
        ) as span:
            context = span.get_span_context()
            sent.add((format(context.trace_id, "032x"), format(context.span_id, "016x")))
    assert provider.force_flush(10_000)
    provider.shutdown()
    return sent


def _metric(gw: RunningGateway, name: str, **labels: str) -> float:
    return float(gw.samples()[(name, frozenset(labels.items()))].value)


def test_traces_reach_the_sink_after_it_was_down_and_logs_reach_loki(tmp_path: Path) -> None:
    tempo, loki = GrpcSink(), HttpSink()
    tempo.mode = loki.mode = "unavailable"
    config = loopback_config(
        exporters={
            "traces": {"endpoint": tempo.endpoint, "protocol": "grpc", "retry": FAST_RETRY},
            "logs": {"endpoint": loki.url, "protocol": "http/protobuf", "retry": FAST_RETRY},
        },
        queue={"directory": str(tmp_path / "queue")},
    )
    try:
        with running_gateway(config) as gw:
            sent = _send_spans(gw, 300)  # every request acknowledged while the sinks are down
            provider = LoggerProvider(resource=Resource.create({"service.name": "fwd"}))
            provider.add_log_record_processor(
                BatchLogRecordProcessor(OTLPLogExporter(endpoint=gw.grpc_endpoint, insecure=True))
            )
            logger = provider.get_logger("test")
            for i in range(50):
                logger.emit(
                    body=f"line {i}",
                    severity_number=SeverityNumber.INFO,
                    attributes={semconv.MODEL_NAME: "f"},
                )
            provider.shutdown()
            time.sleep(1.0)
            assert tempo.spans == [] and loki.log_records == []
            assert _metric(gw, "otelml_exporter_queue_items", exporter="traces") == 300
            tempo.mode = loki.mode = "ok"  # back
            _wait(lambda: len(tempo.spans) >= 300 and len(loki.log_records) >= 50)
            assert set(tempo.spans) == sent  # ids compared: all of them, unchanged
            assert len(tempo.spans) == 300  # and none twice
            assert sorted(body for _, _, body in loki.log_records) == sorted(
                f"line {i}" for i in range(50)
            )
            _wait(lambda: _metric(gw, "otelml_exporter_queue_items", exporter="traces") == 0)
            accepted = _metric(gw, "otelml_receiver_accepted_spans_total", transport="grpc")
            assert _metric(gw, "otelml_exporter_sent_spans_total", exporter="traces") == accepted
            assert _metric(gw, "otelml_exporter_retries_total", exporter="traces") > 0
            assert _metric(gw, "otelml_exporter_sent_log_records_total", exporter="logs") == 50
    finally:
        tempo.stop()
        loki.stop()


def test_permanent_errors_are_dropped_and_counted(tmp_path: Path) -> None:
    tempo = GrpcSink()
    tempo.mode = "invalid"
    config = loopback_config(
        exporters={"traces": {"endpoint": tempo.endpoint, "protocol": "grpc", "retry": FAST_RETRY}},
        queue={"directory": str(tmp_path / "queue")},
    )
    try:
        with running_gateway(config) as gw:
            _send_spans(gw, 20)
            _wait(lambda: _metric(gw, "otelml_exporter_queue_items", exporter="traces") == 0)
            failed = _metric(
                gw,
                "otelml_exporter_send_failed_spans_total",
                exporter="traces",
                reason="invalid_argument",
            )
            assert failed == 20
            assert _metric(gw, "otelml_exporter_sent_spans_total", exporter="traces") == 0
    finally:
        tempo.stop()


def test_a_full_queue_refuses_with_a_retry_hint_and_counts_nothing_twice(tmp_path: Path) -> None:
    tempo = GrpcSink()
    tempo.mode = "unavailable"
    config = loopback_config(
        exporters={"traces": {"endpoint": tempo.endpoint, "protocol": "grpc", "retry": FAST_RETRY}},
        queue={"directory": str(tmp_path / "queue"), "max_bytes": "4KiB"},
    )
    payload = traces([{semconv.MODEL_NAME: "q", semconv.FEATURE_PREFIX + "x": 1.0}] * 20)
    try:
        with running_gateway(config) as gw:
            codes = [
                httpx.post(
                    f"{gw.http_url}/v1/traces",
                    content=payload,
                    headers={"Content-Type": "application/x-protobuf"},
                )
                for _ in range(10)
            ]
            accepted = [r for r in codes if r.status_code == 200]
            refused = [r for r in codes if r.status_code == 503]
            assert accepted and refused and len(accepted) + len(refused) == 10
            assert all(1 <= int(r.headers["retry-after"]) <= 5 for r in refused)
            labels = {"model": "q", "model_version": "", "feature": "x", "le": "+Inf"}
            counted = gw.samples()[("otelml_feature_value_bucket", frozenset(labels.items()))]
            assert counted.value == 20 * len(accepted)  # refused requests were not counted
            assert _metric(
                gw, "otelml_exporter_enqueue_failed_spans_total", exporter="traces"
            ) == 20 * len(refused)
    finally:
        tempo.stop()


@pytest.mark.parametrize("transport", ["grpc"])
def test_grpc_refusal_is_unavailable_with_retry_info(tmp_path: Path, transport: str) -> None:
    import grpc
    from google.rpc import error_details_pb2, status_pb2

    tempo = GrpcSink()
    tempo.mode = "unavailable"
    config = loopback_config(
        exporters={"traces": {"endpoint": tempo.endpoint, "protocol": "grpc", "retry": FAST_RETRY}},
        queue={"directory": str(tmp_path / "queue"), "max_bytes": "1KiB"},
    )
    payload = traces([{semconv.MODEL_NAME: "q", semconv.FEATURE_PREFIX + "x": 1.0}] * 20)
    try:
        with running_gateway(config) as gw, grpc.insecure_channel(gw.grpc_endpoint) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=None,
            )
            with pytest.raises(grpc.RpcError) as error:
                for _ in range(5):
                    export(payload, timeout=5)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            details = dict(error.value.trailing_metadata())["grpc-status-details-bin"]
            status = status_pb2.Status.FromString(details)
            info = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(info)
            assert 1 <= info.retry_delay.seconds <= 5
    finally:
        tempo.stop()
