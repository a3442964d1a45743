"""Bad input gets its documented answer, is counted, and the gateway keeps serving."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otelml import semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def _attributes(m: str, x: float) -> dict[str, Any]:
    return {semconv.MODEL_NAME: m, semconv.FEATURE_PREFIX + "x": x}


def _request(spans: int, trace_id: bytes = b"\x01" * 16, **attributes: Any) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add(trace_id=trace_id, span_id=(i + 1).to_bytes(8, "big"), name="p")
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000_000_000, 1_500_000_000
        for key, value in attributes.items():
            any_value = span.attributes.add(key=key).value
            if isinstance(value, str):
                any_value.string_value = value
            elif isinstance(value, float):
                any_value.double_value = value
    return request.SerializeToString()


def _refused(gw: RunningGateway, reason: str, transport: str = "http") -> float:
    key = (
        "otelml_receiver_requests_refused_total",
        frozenset({"transport": transport, "reason": reason}.items()),
    )
    sample = gw.samples().get(key)
    return sample.value if sample else 0.0


def _still_serving(gw: RunningGateway) -> None:
    assert httpx.get(f"{gw.admin_url}/healthz").status_code == 200
    ok = httpx.post(f"{gw.http_url}/v1/traces", content=_request(1), headers=PROTOBUF)
    assert ok.status_code == 200


@pytest.fixture(scope="module")
def small_gateway() -> Iterator[RunningGateway]:
    config = loopback_config(limits={"max_request_bytes": "64KiB", "max_series": 500})
    with running_gateway(config) as gw:
        yield gw


def test_malformed_protobuf_is_400_with_status_body(small_gateway: RunningGateway) -> None:
    gw = small_gateway
    response = httpx.post(f"{gw.http_url}/v1/traces", content=b"\xff\xff\xff", headers=PROTOBUF)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "malformed protobuf" in status.message
    assert _refused(gw, "malformed") >= 1
    _still_serving(gw)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", json.dumps({"resourceSpans": [{"scopeSpans": "x"}]}).encode()],
)
def test_malformed_json_is_400_with_json_body(small_gateway: RunningGateway, body: bytes) -> None:
    response = httpx.post(f"{small_gateway.http_url}/v1/traces", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "malformed" in response.json()["message"]
    _still_serving(small_gateway)


def test_otlp_json_with_hex_ids_is_accepted_and_counted(small_gateway: RunningGateway) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json-span",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "ml.model.name", "value": {"stringValue": "jsonmodel"}},
                                    {"key": "ml.feature.n", "value": {"intValue": "7"}},
                                    {
                                        "key": "ml.feature.arr",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"doubleValue": 1.5},
                                                    {"doubleValue": 2.5},
                                                ]
                                            }
                                        },
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{small_gateway.http_url}/v1/traces", content=json.dumps(body), headers=JSON
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    samples = small_gateway.samples()
    labels = {"model": "jsonmodel", "model_version": "", "feature": "arr", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 2
    # The scalar "n" applies to both rows of the two-element batch.
    labels = {"model": "jsonmodel", "model_version": "", "feature": "n", "le": "10.0"}
    sample = samples[("otelml_feature_value_bucket", frozenset(labels.items()))]
    assert sample.value == 2
    assert sample.exemplar.labels["trace_id"] == "5b8efff798038103d269b633813fc60c"


def test_wrong_method_and_content_type(small_gateway: RunningGateway) -> None:
    gw = small_gateway
    response = httpx.get(f"{gw.http_url}/v1/traces")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    response = httpx.post(
        f"{gw.http_url}/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    response = httpx.post(
        f"{gw.http_url}/v1/logs",
        content=_request(1),
        headers={**PROTOBUF, "Content-Encoding": "br"},
    )
    assert response.status_code == 415
    assert _refused(gw, "unsupported_media_type") >= 1
    assert _refused(gw, "unsupported_encoding") >= 1
    _still_serving(gw)


def test_oversized_bodies_are_413_with_and_without_content_length(
    small_gateway: RunningGateway,
) -> None:
    gw = small_gateway
    big = _request(2000, **_attributes(m="m", x=1.0))
    assert len(big) > 64 * 1024
    response = httpx.post(f"{gw.http_url}/v1/traces", content=big, headers=PROTOBUF)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    response = httpx.post(f"{gw.http_url}/v1/traces", content=chunks(), headers=PROTOBUF)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert _refused(gw, "too_large") >= 2
    _still_serving(gw)


def test_gzip_bodies_inflate_and_gzip_bomb_is_413(small_gateway: RunningGateway) -> None:
    gw = small_gateway
    ok = gzip.compress(_request(3, **_attributes(m="gz", x=2.0)))
    response = httpx.post(
        f"{gw.http_url}/v1/traces", content=ok, headers={**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    labels = {"model": "gz", "model_version": "", "feature": "x", "le": "+Inf"}
    assert gw.samples()[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 3

    # 256 MiB of zeros compress to ~256 KiB; the gateway must stop inflating at 64 KiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 1 << 20
    response = httpx.post(
        f"{gw.http_url}/v1/traces", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    response = httpx.post(
        f"{gw.http_url}/v1/traces",
        content=b"\x1f\x8b\x08\x00garbage",
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    _still_serving(gw)


def test_invalid_trace_ids_get_partial_success(small_gateway: RunningGateway) -> None:
    gw = small_gateway
    response = httpx.post(
        f"{gw.http_url}/v1/traces", content=_request(3, trace_id=b""), headers=PROTOBUF
    )
    assert response.status_code == 200
    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert parsed.partial_success.rejected_spans == 3
    assert "trace_id" in parsed.partial_success.error_message
    key = (
        "otelml_receiver_refused_spans_total",
        frozenset({"transport": "http", "reason": "invalid_id"}.items()),
    )
    assert gw.samples()[key].value == 3


def test_grpc_malformed_is_invalid_argument_and_oversized_is_refused(
    small_gateway: RunningGateway,
) -> None:
    gw = small_gateway
    with grpc.insecure_channel(gw.grpc_endpoint) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as error:
            export(b"\xff\xff\xff", timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        too_large = _refused(gw, "too_large", transport="grpc")
        for spans in (1000, 2000):  # 100 kB: refused by the receiver; 200 kB: by grpcio
            big = _request(spans, **_attributes(m="m", x=1.0))
            with pytest.raises(grpc.RpcError) as error:
                export(big, timeout=5)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        response = export(_request(2), timeout=5)
        assert not response.HasField("partial_success")
    assert _refused(gw, "malformed", transport="grpc") >= 1
    # Up to twice limits.max_request_bytes, an oversized message is counted.
    assert _refused(gw, "too_large", transport="grpc") == too_large + 1


def test_100k_distinct_categories_stay_bounded() -> None:
    config = loopback_config(limits={"max_categories": 20})
    with running_gateway(config) as gw:
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        span = scope.spans.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, name="batch")
        span.attributes.add(key=semconv.MODEL_NAME).value.string_value = "cats"
        values = span.attributes.add(key=semconv.FEATURE_PREFIX + "user").value.array_value
        for i in range(100_000):
            values.values.add().string_value = f"user-{i}"
        response = httpx.post(
            f"{gw.http_url}/v1/traces",
            content=request.SerializeToString(),
            headers=PROTOBUF,
            timeout=60,
        )
        assert response.status_code == 200
        samples = gw.samples()
        categories = {
            dict(k[1])["category"]: v.value
            for k, v in samples.items()
            if k[0] == "otelml_feature_category_total" and ("model", "cats") in k[1]
        }
        assert len(categories) == 21
        assert categories[semconv.OTHER_CATEGORY] == 100_000 - 20
        assert sum(categories.values()) == 100_000
        assert len(gw.scrape()) < 200_000
        _still_serving(gw)


def test_series_budget_folds_new_series_into_counted_overflow() -> None:
    # Default numeric histograms cost 50 buckets + 1 missing + 4 invalid = 55 series each.
    config = loopback_config(limits={"max_series": 200})
    with running_gateway(config) as gw:
        attributes: dict[str, Any] = {semconv.MODEL_NAME: "wide"}
        attributes.update({f"{semconv.FEATURE_PREFIX}f{i:02d}": float(i) for i in range(10)})
        response = httpx.post(
            f"{gw.http_url}/v1/traces", content=_request(4, **attributes), headers=PROTOBUF
        )
        assert response.status_code == 200
        samples = gw.samples()
        own = {
            dict(k[1])["feature"]
            for k in samples
            if k[0] == "otelml_feature_value_bucket" and ("model", "wide") in k[1]
        }
        assert len(own) == 3  # 3 × 55 = 165 ≤ 200 < 4 × 55
        overflow = samples[
            ("otelml_series_overflow_total", frozenset({"metric": "otelml_feature_value"}.items()))
        ].value
        # Every observation is in exactly one place: its own histogram or the overflow count.
        assert overflow == (10 - 3) * 4
        assert sum(1 for k in samples if k[0].startswith("otelml_feature")) < 200
