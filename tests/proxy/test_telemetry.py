"""Exporter choice by the standard OTEL_* variables, and the export counters."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelml.proxy.telemetry import CountingExporter, otlp_exporter, tracer_provider


def test_protocol_and_endpoint_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(otlp_exporter("http://127.0.0.1:4317"), GrpcExporter)  # the default
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    exporter = otlp_exporter("127.0.0.1:4318")
    assert isinstance(exporter, HttpExporter)
    assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")  # the specific one wins
    assert isinstance(otlp_exporter(None), GrpcExporter)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="not supported"):
        otlp_exporter(None)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert otlp_exporter(None) is None


def test_service_name_defaults_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert tracer_provider(None).resource.attributes["service.name"] == "otelml-proxy"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=tfs-sidecar,team=ml")
    assert tracer_provider(None).resource.attributes["service.name"] == "tfs-sidecar"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "churn-proxy")
    assert tracer_provider(None).resource.attributes["service.name"] == "churn-proxy"


class _Flaky(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("exporter bug")
        return SpanExportResult.SUCCESS if self.calls == 1 else SpanExportResult.FAILURE


def test_counting_exporter_counts_and_never_raises() -> None:
    results: list[tuple[bool, int]] = []
    exporter = CountingExporter(_Flaky(), lambda ok, n: results.append((ok, n)))
    spans: list[ReadableSpan] = []
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.FAILURE  # the bug is a failure
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert results == [(True, 0), (False, 0), (False, 0)]
