"""A full disk under the queue: exports get retry hints, the sender survives, nothing is lost.

The queue lives on a 4 MiB tmpfs that a filler file fills up (ENOSPC); deleting the filler
gives the space back. Everything goes over real sockets: raw OTLP/HTTP and OTLP/gRPC requests
in, a gRPC Tempo stand-in out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from otelml import semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway
from tests.gateway.otlp_builders import traces
from tests.sinks import GrpcSink
from tests.tmpfs import fill, small_tmpfs

PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS = 20


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _batch(first: int) -> tuple[bytes, set[tuple[str, str]]]:
    spans = [{semconv.MODEL_NAME: "m", semconv.FEATURE_PREFIX + "x": 1.0}] * SPANS
    ids = {
        ((first + i).to_bytes(16, "big").hex(), (first + i).to_bytes(8, "big").hex())
        for i in range(SPANS)
    }
    return traces(spans, first_trace=first), ids


def _io_errors(gw: RunningGateway, operation: str) -> float:
    key = (
        "otelml_exporter_queue_io_errors_total",
        frozenset({"exporter": "traces", "operation": operation}.items()),
    )
    sample = gw.samples().get(key)
    return float(sample.value) if sample else 0.0


def _readyz(gw: RunningGateway) -> httpx.Response:
    return httpx.get(f"{gw.admin_url}/readyz", timeout=10)


def test_a_full_disk_refuses_with_retry_hints_and_delivery_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otelml.gateway.exporters")
    tempo = GrpcSink()
    with small_tmpfs(tmp_path / "disk") as disk:
        config = loopback_config(
            exporters={
                "traces": {
                    "endpoint": tempo.endpoint,
                    "protocol": "grpc",
                    "retry": {"initial_interval": "100ms", "max_interval": "200ms"},
                }
            },
            queue={"directory": str(disk / "queue")},
        )
        acknowledged: set[tuple[str, str]] = set()
        try:
            with running_gateway(config) as gw:
                # 7. Disk full on enqueue: 503 + Retry-After, UNAVAILABLE + RetryInfo.
                filler = fill(disk)
                body, _ = _batch(1)
                refused = httpx.post(f"{gw.http_url}/v1/traces", content=body, headers=PROTOBUF)
                assert refused.status_code == 503
                assert refused.headers["Retry-After"] == "2"
                with grpc.insecure_channel(gw.grpc_endpoint) as channel:
                    export = channel.unary_unary(TRACE_EXPORT)
                    try:
                        export(body, timeout=10)
                        raise AssertionError("a full disk must refuse the export")
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.UNAVAILABLE
                        status = rpc_status.from_call(error)
                        assert status is not None
                        retry = error_details_pb2.RetryInfo()
                        assert status.details[0].Unpack(retry)
                        assert retry.retry_delay.seconds == 2
                assert _io_errors(gw, "enqueue") == 2
                not_ready = _readyz(gw)
                assert not_ready.status_code == 503
                assert "exporter traces: queue enqueue failing" in not_ready.text

                # Space back: the same request is accepted (the client's retry) and delivered.
                filler.unlink()
                body, ids = _batch(1)
                ok = httpx.post(f"{gw.http_url}/v1/traces", content=body, headers=PROTOBUF)
                assert ok.status_code == 200
                acknowledged |= ids
                _wait(lambda: set(tempo.spans) == acknowledged)
                _wait(lambda: _readyz(gw).status_code == 200)

                # 8. Disk full while delivering: the cursor cannot be saved; the sender lives.
                tempo.mode = "unavailable"
                body, ids = _batch(1000)
                assert httpx.post(f"{gw.http_url}/v1/traces", content=body, headers=PROTOBUF)
                acknowledged |= ids
                filler = fill(disk)
                tempo.mode = "ok"
                _wait(lambda: _io_errors(gw, "deliver") >= 1)
                assert "queue deliver failing" in _readyz(gw).text
                filler.unlink()
                body, ids = _batch(2000)
                ok = httpx.post(f"{gw.http_url}/v1/traces", content=body, headers=PROTOBUF)
                assert ok.status_code == 200
                acknowledged |= ids
                _wait(lambda: acknowledged <= set(tempo.spans))
                _wait(lambda: _readyz(gw).status_code == 200)
                assert set(tempo.spans) == acknowledged
                # Logged once per spell of failures, and once when it works again.
                messages = [r.getMessage() for r in caplog.records]
                assert sum("queue enqueue failed" in m for m in messages) == 1
                assert sum("queue deliver failed" in m for m in messages) == 1
                assert sum("queue deliver works again" in m for m in messages) == 1
                pending = gw.samples()[
                    ("otelml_exporter_queue_items", frozenset({("exporter", "traces")}))
                ]
                assert pending.value == 0
            # The cursor on disk is past everything delivered: a restart resends nothing.
            with running_gateway(config) as gw:
                time.sleep(0.5)
                assert set(tempo.spans) == acknowledged
                assert len(tempo.spans) == len(acknowledged)
        finally:
            tempo.stop()
