"""The SDK's exporters with the native encoder, over both transports: what reaches a real
OTLP/gRPC and OTLP/HTTP receiver on loopback is byte for byte the SDK encoder's request."""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult

from otelml.instrument import encoder
from otelml.instrument.exporter import span_exporter
from tests.instrument.test_encoder import make_spans, plan


def spans() -> list[Any]:
    attributes = {"ml.model.name": "churn", "ml.feature.age": [41.0, 57.5], "n": 3}
    return make_spans(
        Resource({"service.name": "exporter-test"}), ["s"], [plan(attributes=attributes)] * 3
    )


def test_grpc_sends_the_native_bytes() -> None:
    received: list[bytes] = []

    def export(request: bytes, context: Any) -> bytes:
        received.append(request)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(2))
    handler = grpc.unary_unary_rpc_method_handler(export)  # raw bytes in, raw bytes out
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        exporter = span_exporter("grpc", endpoint=f"127.0.0.1:{port}", insecure=True)
        assert exporter.native  # type: ignore[attr-defined]
        batch = spans()
        before = encoder.stats().get("native", 0)
        assert exporter.export(batch) == SpanExportResult.SUCCESS
        assert received == [encoder.sdk_encode(batch)]
        assert encoder.stats()["native"] == before + 1
        exporter.shutdown()
    finally:
        server.stop(None)


def test_http_sends_the_native_bytes() -> None:
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        exporter = span_exporter("http/protobuf", endpoint=url)
        batch = spans()
        assert exporter.export(batch) == SpanExportResult.SUCCESS
        assert received == [("/v1/traces", encoder.sdk_encode(batch))]
        exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
