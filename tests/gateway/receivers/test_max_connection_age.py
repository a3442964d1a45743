"""`receivers.otlp.grpc.max_connection_age`: long-lived clients reconnect, so they can move.

A gRPC client keeps one HTTP/2 connection for hours; behind a Kubernetes Service that pins all
of its traffic to one replica. With a maximum age the server sends GOAWAY and the client's
channel reconnects by itself — every request still succeeds.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otelml import config
from otelml.errors import ConfigError
from tests.conftest import loopback_config, running_gateway
from tests.gateway.otlp_builders import traces

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _connections_during_calls(grpc_settings: dict[str, object], seconds: float) -> tuple[int, int]:
    """(connections the channel made, requests answered OK) over `seconds` of steady calls."""
    receivers = {"otlp": {"grpc": {"endpoint": "127.0.0.1:0", **grpc_settings}, "http": None}}
    with running_gateway(loopback_config(receivers=receivers)) as gateway:
        channel = grpc.insecure_channel(gateway.grpc_endpoint)
        ready = 0
        lock = threading.Lock()

        def on_state(state: grpc.ChannelConnectivity) -> None:
            nonlocal ready
            if state is grpc.ChannelConnectivity.READY:
                with lock:
                    ready += 1

        channel.subscribe(on_state, try_to_connect=True)
        export = channel.unary_unary(
            EXPORT,
            request_serializer=None,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        answered = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            export(traces([{"k": "v"}]), timeout=10, wait_for_ready=True)
            answered += 1
            time.sleep(0.1)
        channel.unsubscribe(on_state)
        channel.close()
        with lock:
            return ready, answered


def test_a_client_reconnects_after_the_maximum_age_and_loses_no_request() -> None:
    connections, answered = _connections_during_calls(
        {"max_connection_age": "1s", "max_connection_age_grace": "1s"}, seconds=5.0
    )
    assert answered >= 20
    # 5 s of calls, connections closed after 1 s ± 10 % jitter: at least 3 connections.
    assert connections >= 3


def test_without_a_maximum_age_one_connection_carries_everything() -> None:
    connections, answered = _connections_during_calls({}, seconds=2.5)
    assert answered >= 10
    assert connections == 1


def test_the_age_is_a_duration() -> None:
    parsed = config.parse(
        {
            "receivers": {
                "otlp": {
                    "grpc": {
                        "endpoint": ":4317",
                        "max_connection_age": "30m",
                        "max_connection_age_grace": "30s",
                    }
                }
            }
        }
    )
    grpc_receiver = parsed.receivers.otlp.grpc
    assert grpc_receiver is not None
    assert (grpc_receiver.max_connection_age, grpc_receiver.max_connection_age_grace) == (
        1800.0,
        30.0,
    )
    with pytest.raises(ConfigError) as error:
        config.parse(
            {"receivers": {"otlp": {"grpc": {"endpoint": ":4317", "max_connection_age": "0s"}}}}
        )
    assert error.value.problems == ["receivers.otlp.grpc.max_connection_age: must be positive"]
