"""Stand-ins for Tempo and Loki: OTLP receivers built on the official protobuf services.

They record every span and log record they accept (trace id, span id, and for logs the body),
and can be switched to fail: "unavailable" (retryable) or "invalid" (permanent).
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, str]] = []
        self.log_records: list[tuple[str, str, str]] = []
        self.requests = 0
        self.raw: list[bytes] = []  # every accepted request, serialised, for content checks
        self.mode = "ok"

    def add_traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            self.raw.append(request.SerializeToString())
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.spans += [(s.trace_id.hex(), s.span_id.hex()) for s in ss.spans]

    def add_logs(self, request: logs_service_pb2.ExportLogsServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            self.raw.append(request.SerializeToString())
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    self.log_records += [
                        (r.trace_id.hex(), r.span_id.hex(), r.body.string_value)
                        for r in sl.log_records
                    ]


class GrpcSink(Received):
    def __init__(self, port: int = 0) -> None:
        super().__init__()
        sink = self
        #: Spans per second the sink takes at most (0: no limit) — a slow destination.
        self.spans_per_second = 0.0

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
                sink._check(context)
                if sink.spans_per_second:
                    spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                    time.sleep(spans / sink.spans_per_second)
                sink.add_traces(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
                sink._check(context)
                sink.add_logs(request)
                return logs_service_pb2.ExportLogsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def _check(self, context: grpc.ServicerContext) -> None:
        if self.mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "sink down")
        if self.mode == "invalid":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "sink rejects this")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(0)


class HttpSink(Received):
    """Loki's OTLP endpoint shape: POST /otlp/v1/logs (protobuf)."""

    def __init__(self) -> None:
        super().__init__()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if sink.mode == "unavailable":
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                if self.path != "/otlp/v1/logs" or sink.mode == "invalid":
                    self.send_response(400)
                    self.end_headers()
                    return
                sink.add_logs(logs_service_pb2.ExportLogsServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(logs_service_pb2.ExportLogsServiceResponse().SerializeToString())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/otlp"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
