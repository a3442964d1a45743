"""Auth and admission on both receivers: 401/UNAUTHENTICATED, and refusals with retry hints."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelml import semconv
from otelml.errors import Refused
from otelml.gateway.receivers.guard import Guard, resident_bytes
from tests.conftest import loopback_config, running_gateway
from tests.gateway.otlp_builders import traces

PROTOBUF = {"Content-Type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_bearer_token_is_required_on_both_receivers() -> None:
    config = loopback_config(auth={"bearer_token": "s3cret"})
    with running_gateway(config) as gw:
        for exporter in (
            GrpcExporter(
                endpoint=gw.grpc_endpoint, insecure=True, headers={"authorization": "Bearer s3cret"}
            ),
            HttpExporter(
                endpoint=f"{gw.http_url}/v1/traces", headers={"Authorization": "Bearer s3cret"}
            ),
        ):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            with provider.get_tracer("t").start_as_current_span(
                "p", attributes={semconv.MODEL_NAME: "a", semconv.FEATURE_PREFIX + "x": 1.0}
            ):
                pass
            provider.shutdown()
        payload = traces([{semconv.MODEL_NAME: "a", semconv.FEATURE_PREFIX + "x": 1.0}])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = httpx.post(
                f"{gw.http_url}/v1/traces", content=payload, headers={**PROTOBUF, **headers}
            )
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
        with grpc.insecure_channel(gw.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None)
            with pytest.raises(grpc.RpcError) as error:
                export(payload, timeout=5, metadata=(("authorization", "Bearer nope"),))
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        samples = gw.samples()
    labels = {"model": "a", "model_version": "", "feature": "x", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 2
    refused = {
        dict(k[1])["transport"]: v.value
        for k, v in samples.items()
        if k[0] == "otelml_receiver_requests_refused_total"
        and ("reason", "unauthenticated") in k[1]
    }
    assert refused == {"http": 3, "grpc": 1}


def test_memory_limit_refuses_with_retry_hints() -> None:
    assert resident_bytes() > 10 << 20
    config = loopback_config(limits={"memory_limit": "1MiB"})  # always above it
    payload = traces([{semconv.MODEL_NAME: "a", semconv.FEATURE_PREFIX + "x": 1.0}])
    with running_gateway(config) as gw:
        response = httpx.post(f"{gw.http_url}/v1/traces", content=payload, headers=PROTOBUF)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        with grpc.insecure_channel(gw.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None)
            with pytest.raises(grpc.RpcError) as error:
                export(payload, timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE  # never RESOURCE_EXHAUSTED
        status = status_pb2.Status.FromString(
            dict(error.value.trailing_metadata())["grpc-status-details-bin"]
        )
        info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info) and info.retry_delay.seconds == 1
        assert "otelml_feature_value" not in gw.scrape()  # nothing was counted


def test_inflight_budget() -> None:
    guard = Guard(max_inflight_bytes=100)
    with guard.admit(80):
        with pytest.raises(Refused), guard.admit(30):
            pass
        with guard.admit(20):
            assert guard.inflight_bytes == 100
    assert guard.inflight_bytes == 0
    with guard.admit(500):  # one request alone is always admitted (its size has a limit)
        assert guard.inflight_bytes == 500
