"""Deeply nested input is malformed (400), never a 500 — and one rule, redacted or not:
attribute values may nest 16 arrays/kvlists deep, OTLP/JSON documents 100 levels."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conftest import loopback_config, running_gateway

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def _otlp_json(request: ExportTraceServiceRequest) -> str:
    """OTLP/JSON: proto3 JSON with hex trace and span ids."""
    document = json_format.MessageToDict(request)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = "01" * 16, "01" * 8
    for link in span.get("links", []):
        link["traceId"], link["spanId"] = "02" * 16, "02" * 8
    return json.dumps(document)


def _nested(levels: int, where: str = "span") -> ExportTraceServiceRequest:
    """One span with an attribute `deep` (on the span, an event, a link, the resource or the
    scope) that is `levels` kvlists within each other."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    scope_spans = resource_spans.scope_spans.add()
    span = scope_spans.spans.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="p")
    holder = {
        "span": lambda: span.attributes,
        "event": lambda: span.events.add(name="e").attributes,
        "link": lambda: span.links.add(trace_id=b"\x02" * 16, span_id=b"\x02" * 8).attributes,
        "resource": lambda: resource_spans.resource.attributes,
        "scope": lambda: scope_spans.scope.attributes,
    }[where]()
    value = holder.add(key="deep").value
    _deepen(value, levels)
    return request


def _deepen(value: AnyValue, levels: int) -> None:
    for _ in range(levels):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "leaf"


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs", "/v1/metrics"])
def test_deep_json_is_400_without_a_traceback(path: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with running_gateway() as gw:
        for body in (
            b"[" * 1000 + b"]" * 1000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"resourceSpans":' + b"[" * 200 + b"]" * 200 + b"}",
        ):
            response = httpx.post(f"{gw.http_url}{path}", content=body, headers=JSON, timeout=10)
            assert response.status_code == 400, response.text
            assert response.json()["message"].startswith("malformed")
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("redaction", [False, True])
def test_nesting_has_one_limit_with_and_without_redaction(redaction: bool) -> None:
    config = loopback_config(redaction={"enabled": redaction})
    with running_gateway(config) as gw:
        for where in ("span", "event", "link", "resource", "scope"):
            for levels, status in ((16, 200), (17, 400), (40, 400)):
                request = _nested(levels, where)
                as_protobuf = httpx.post(
                    f"{gw.http_url}/v1/traces",
                    content=request.SerializeToString(),
                    headers=PROTOBUF,
                )
                as_json = httpx.post(
                    f"{gw.http_url}/v1/traces", content=_otlp_json(request), headers=JSON
                )
                assert (where, levels, as_protobuf.status_code, as_json.status_code) == (
                    where,
                    levels,
                    status,
                    status,
                )
        for levels, status in ((16, 200), (17, 400), (40, 400)):  # a log record's body
            logs = ExportLogsServiceRequest()
            record = logs.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1)
            _deepen(record.body, levels)
            response = httpx.post(
                f"{gw.http_url}/v1/logs", content=logs.SerializeToString(), headers=PROTOBUF
            )
            assert (levels, response.status_code) == (levels, status)
