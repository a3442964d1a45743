"""Fuzzing both receivers for a bounded time: random and mutated bodies never crash the gateway
and always get one of the documented answers."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelml import semconv
from tests.conftest import RunningGateway, running_gateway
from tests.gateway.otlp_builders import logs, traces

VALID = traces(
    [
        {
            semconv.MODEL_NAME: "z",
            semconv.FEATURE_PREFIX + "x": [1.0, 2.0],
            semconv.FEATURE_PREFIX + "c": "a",
        }
    ]
    * 3
)
VALID_LOGS = logs([{semconv.MODEL_NAME: "z", semconv.FEATURE_PREFIX + "x": 1.0}])
HTTP_ANSWERS = {200, 400, 404, 413, 415}


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with running_gateway() as running:
        yield running


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out[: max(1, cut % (len(out) + 1))])


bodies = st.one_of(
    st.binary(max_size=512),
    st.builds(
        _mutate,
        st.sampled_from([VALID, VALID_LOGS]),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
        st.integers(0, 10_000),
    ),
)
content_types = st.sampled_from(["application/x-protobuf", "application/json", "text/plain"])
paths = st.sampled_from(["/v1/traces", "/v1/logs", "/v1/metrics", "/v1/ground_truth"])


@pytest.mark.slow  # 250 real HTTP requests: ~30 s on a loaded machine
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, content_types, paths)
def test_http_receiver_answers_every_body(
    gw: RunningGateway, body: bytes, content_type: str, path: str
) -> None:
    response = httpx.post(
        f"{gw.http_url}{path}", content=body, headers={"Content-Type": content_type}, timeout=10
    )
    assert response.status_code in HTTP_ANSWERS, (response.status_code, response.text)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.sampled_from(["TraceService", "LogsService", "MetricsService"]))
def test_grpc_receiver_answers_every_body(gw: RunningGateway, body: bytes, service: str) -> None:
    package = {"TraceService": "trace", "LogsService": "logs", "MetricsService": "metrics"}[service]
    with grpc.insecure_channel(gw.grpc_endpoint) as channel:
        export = channel.unary_unary(
            f"/opentelemetry.proto.collector.{package}.v1.{service}/Export",
            request_serializer=None,
        )
        try:
            export(body, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.UNIMPLEMENTED,
            ), error


def test_still_serving_after_the_fuzzing(gw: RunningGateway) -> None:
    assert httpx.get(f"{gw.admin_url}/healthz").status_code == 200
    response = httpx.post(
        f"{gw.http_url}/v1/traces",
        content=VALID,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert "otelml_feature_value_bucket" in gw.scrape()
