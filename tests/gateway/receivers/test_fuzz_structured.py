"""Structured fuzzing: well-formed OTLP requests with hostile contents — nested arrays and
kvlists, ids of every length, odd unicode, huge and non-finite numbers, bytes — over
protobuf, OTLP/JSON and gRPC, redaction on and off. Every request gets a documented answer
(never a 500), and an accepted one is counted span for span."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml import semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway
from tests.gateway.otlp_builders import set_value

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
KEYS = st.one_of(
    st.sampled_from(
        [
            semconv.MODEL_NAME,
            semconv.MODEL_VERSION,
            semconv.FEATURE_PREFIX + "x",
            semconv.FEATURE_PREFIX + "c",
            semconv.PREDICTION,
            semconv.PREDICTION_ID,
            "service.name",
            "other",
        ]
    ),
    st.text(max_size=20).map(lambda s: semconv.FEATURE_PREFIX + s),
)
SCALARS = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=8),
)


values = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=40,
)
spans = st.lists(
    st.tuples(
        st.binary(max_size=20),  # trace id: valid only at 16 bytes, not all zero
        st.binary(max_size=10),  # span id: valid only at 8
        st.text(max_size=40),  # name
        st.dictionaries(KEYS, values, max_size=6),
        st.integers(0, 2**64 - 1),
    ),
    min_size=1,
    max_size=8,
)


def _request(generated: list[tuple[bytes, bytes, str, dict[str, Any], int]]) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for trace_id, span_id, name, attributes, end in generated:
        span = scope.spans.add(trace_id=trace_id, span_id=span_id, name=name)
        span.end_time_unix_nano = end
        for key, value in attributes.items():
            set_value(span.attributes.add(key=key).value, value)
    return request.SerializeToString()


def _otlp_json(payload: bytes) -> bytes:
    """OTLP/JSON: proto3 JSON with hex ids."""
    document = json_format.MessageToDict(ExportTraceServiceRequest.FromString(payload))
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "redacted"])
def gw(request: pytest.FixtureRequest) -> Iterator[RunningGateway]:
    with running_gateway(loopback_config(redaction={"enabled": request.param})) as running:
        yield running


def _accepted_and_refused(gw: RunningGateway) -> float:
    total = 0.0
    for (name, _), sample in gw.samples().items():
        if name in ("otelml_receiver_accepted_spans_total", "otelml_receiver_refused_spans_total"):
            total += float(sample.value)
    return total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans)
def test_structured_requests_get_documented_answers(
    gw: RunningGateway, generated: list[tuple[bytes, bytes, str, dict[str, Any], int]]
) -> None:
    payload = _request(generated)
    counted_before = _accepted_and_refused(gw)
    answered = 0
    for content, content_type in (
        (payload, "application/x-protobuf"),
        (_otlp_json(payload), "application/json"),
    ):
        response = httpx.post(
            f"{gw.http_url}/v1/traces",
            content=content,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code in (200, 400), (response.status_code, response.text)
        answered += response.status_code == 200
    with grpc.insecure_channel(gw.grpc_endpoint) as channel:
        try:
            channel.unary_unary(EXPORT)(payload, timeout=10)
            answered += 1
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    # Each accepted request counts every span once: accepted or refused with a reason.
    assert _accepted_and_refused(gw) - counted_before == answered * len(generated)
