"""Deeply nested input is malformed (400), never a 500 — and one rule, redacted or not:
attribute values may nest 16 arrays/kvlists deep, OTLP/JSON documents 100 levels."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import loopback_config, running_gateway

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def _otlp_json(request: ExportTraceServiceRequest) -> str:
    """OTLP/JSON: proto3 JSON with hex trace and span ids."""
    document = json_format.MessageToDict(request)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = "01" * 16, "01" * 8
    return json.dumps(document)


def _nested(levels: int) -> ExportTraceServiceRequest:
    """One span whose attribute `deep` is `levels` kvlists within each other."""
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="p")
    )
    value = span.attributes.add(key="deep").value
    for _ in range(levels):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "leaf"
    return request


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
        for levels, status in ((16, 200), (17, 400), (40, 400)):
            request = _nested(levels)
            as_protobuf = httpx.post(
                f"{gw.http_url}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
            )
            as_json = httpx.post(
                f"{gw.http_url}/v1/traces", content=_otlp_json(request), headers=JSON
            )
            assert (levels, as_protobuf.status_code, as_json.status_code) == (
                levels,
                status,
                status,
            )
