"""The OTLP/gRPC exporter over TLS: `https://` or a `ca_file` selects a secure channel."""

from __future__ import annotations

import asyncio
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otelml.gateway.exporters.otlp import GrpcTransport
from tests import tls_certs


def test_grpc_exporter_trusts_the_given_ca_and_nothing_else(tmp_path: Path) -> None:
    certificates = tls_certs.make(tmp_path)
    received: list[int] = []

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: object, context: grpc.ServicerContext) -> object:
            received.append(len(request.resource_spans))  # type: ignore[attr-defined]
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    credentials = grpc.ssl_server_credentials(
        [(certificates.server_key.read_bytes(), certificates.server_cert.read_bytes())]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.resource_spans.add()
    payload = request.SerializeToString()
    try:
        trusted = GrpcTransport(f"https://127.0.0.1:{port}", "spans", {}, 5, certificates.ca)
        untrusted = GrpcTransport(f"https://127.0.0.1:{port}", "spans", {}, 5)
        plain = GrpcTransport(f"127.0.0.1:{port}", "spans", {}, 5)

        async def scenario() -> list[tuple[bool, bool]]:
            outcomes = [await t.send([payload, payload]) for t in (trusted, untrusted, plain)]
            for transport in (trusted, untrusted, plain):
                await transport.close()
            return [(o.ok, o.retryable) for o in outcomes]

        outcomes = asyncio.run(scenario())
    finally:
        server.stop(0)
    # The trusted one delivered both parts as one request; the others never got through
    # (UNAVAILABLE: retried later, as a destination that is down).
    assert outcomes == [(True, False), (False, True), (False, True)]
    assert received == [2]
