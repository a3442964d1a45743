"""kill -9 while the destination is down: after a restart, everything acknowledged arrives."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx

from otelml import semconv
from tests.gateway.otlp_builders import traces
from tests.prometheus_server import free_port
from tests.sinks import GrpcSink

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _start(config: Path, admin_port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{admin_port}/readyz").status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)


def test_kill_9_with_the_sink_down_loses_nothing_acknowledged(tmp_path: Path) -> None:
    tempo = GrpcSink()
    tempo.mode = "unavailable"
    grpc_port, admin_port = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "receivers:\n  otlp:\n"
        f"    grpc: {{endpoint: '127.0.0.1:{grpc_port}'}}\n"
        "    http: {endpoint: '127.0.0.1:0'}\n"
        f"admin: {{endpoint: '127.0.0.1:{admin_port}'}}\n"
        f"exporters:\n  traces: {{endpoint: '{tempo.endpoint}', "
        "retry: {initial_interval: 100ms, max_interval: 300ms}}\n"
        f"queue: {{directory: '{tmp_path / 'queue'}'}}\n"
    )
    acknowledged: set[str] = set()
    try:
        process = _start(config, admin_port)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None)
            for i in range(20):
                spans = [{semconv.MODEL_NAME: "k", semconv.FEATURE_PREFIX + "x": 1.0}] * 25
                export(traces(spans, first_trace=1 + 25 * i), timeout=10)  # acknowledged
                acknowledged |= {f"{1 + 25 * i + j:032x}" for j in range(25)}
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert tempo.spans == []
        tempo.mode = "ok"
        process = _start(config, admin_port)
        deadline = time.monotonic() + 30
        while {t for t, _ in tempo.spans} != acknowledged:
            assert time.monotonic() < deadline, (len(tempo.spans), len(acknowledged))
            time.sleep(0.2)
        assert len(acknowledged) == 500
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        tempo.stop()
