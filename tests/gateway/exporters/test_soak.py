"""Destination down for 60 s under steady load, then back: every accepted span arrives, RSS flat."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from otelml import semconv
from otelml.gateway.receivers.guard import resident_bytes
from tests.gateway.otlp_builders import traces
from tests.gateway_process import GatewayProcess
from tests.sinks import GrpcSink

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
DOWN_S = 60.0


@pytest.mark.slow
def test_sink_down_60s_under_load_then_everything_arrives(tmp_path: Path) -> None:
    tempo = GrpcSink()
    tempo.mode = "unavailable"
    gateway = GatewayProcess.configure(
        tmp_path,
        f"exporters:\n  traces: {{endpoint: '{tempo.endpoint}', protocol: grpc, "
        "retry: {initial_interval: 200ms, max_interval: 2s}}\n"
        f"queue: {{directory: '{tmp_path / 'queue'}'}}\n",
    )
    acknowledged: set[str] = set()
    refused = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal refused
        batch = 0
        with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None)
            while not stop.is_set():
                first = 1 + 50 * batch
                spans = [{semconv.MODEL_NAME: "soak", semconv.FEATURE_PREFIX + "x": 1.0}] * 50
                try:
                    export(traces(spans, first_trace=first), timeout=10)
                    acknowledged.update(f"{first + j:032x}" for j in range(50))
                except grpc.RpcError:
                    refused += 1
                batch += 1
                time.sleep(0.05)  # ~1000 spans/s

    try:
        process = gateway.start()
        sender = threading.Thread(target=load, daemon=True)
        sender.start()
        time.sleep(5)
        rss_start = resident_bytes(process.pid)
        samples = [rss_start]
        down_until = time.monotonic() + DOWN_S - 5
        while time.monotonic() < down_until:
            time.sleep(5)
            samples.append(resident_bytes(process.pid))
        assert tempo.spans == []
        tempo.mode = "ok"
        time.sleep(5)
        stop.set()
        sender.join(20)
        deadline = time.monotonic() + 60
        while {t for t, _ in tempo.spans} != acknowledged:
            assert time.monotonic() < deadline, (len(set(tempo.spans)), len(acknowledged))
            time.sleep(0.5)
        samples.append(resident_bytes(process.pid))
        duplicates = len(tempo.spans) - len(set(tempo.spans))
        print(
            f"acknowledged {len(acknowledged)} spans, refused {refused} requests, "
            f"duplicates {duplicates}, RSS MiB {[s >> 20 for s in samples]}"
        )
        assert len(acknowledged) > 20_000 and refused == 0
        # Undelivered requests wait on disk, not in memory: RSS stays flat while the queue grows.
        assert max(samples) - rss_start < 64 << 20, [s >> 20 for s in samples]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        stop.set()
        gateway.kill()
        tempo.stop()
