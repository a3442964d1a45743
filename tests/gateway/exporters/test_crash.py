"""kill -9 while the destination is down: after a restart, everything acknowledged arrives."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc

from otelml import semconv
from tests.gateway.otlp_builders import traces
from tests.gateway_process import GatewayProcess
from tests.sinks import GrpcSink

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_kill_9_with_the_sink_down_loses_nothing_acknowledged(tmp_path: Path) -> None:
    tempo = GrpcSink()
    tempo.mode = "unavailable"
    gateway = GatewayProcess.configure(
        tmp_path,
        f"exporters:\n  traces: {{endpoint: '{tempo.endpoint}', protocol: grpc, "
        "retry: {initial_interval: 100ms, max_interval: 300ms}}\n"
        f"queue: {{directory: '{tmp_path / 'queue'}'}}\n",
    )
    acknowledged: set[str] = set()
    try:
        process = gateway.start()
        with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None)
            for i in range(20):
                spans = [{semconv.MODEL_NAME: "k", semconv.FEATURE_PREFIX + "x": 1.0}] * 25
                export(traces(spans, first_trace=1 + 25 * i), timeout=10)  # acknowledged
                acknowledged |= {f"{1 + 25 * i + j:032x}" for j in range(25)}
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert tempo.spans == []
        tempo.mode = "ok"
        process = gateway.start()
        deadline = time.monotonic() + 30
        while {t for t, _ in tempo.spans} != acknowledged:
            assert time.monotonic() < deadline, (len(tempo.spans), len(acknowledged))
            time.sleep(0.2)
        assert len(acknowledged) == 500
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        gateway.kill()
        tempo.stop()
