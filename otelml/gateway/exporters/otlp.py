"""OTLP transports for the sender: gRPC and HTTP/protobuf, and what their answers mean.

Requests go out as they came in (protobuf bytes; JSON requests as their protobuf form), so
trace and span ids, resource attributes and everything the gateway does not read reach Tempo or
Loki unchanged. Queued requests go out together: serialised OTLP requests concatenate into one
valid request (their repeated fields merge), so a batch is the list of their payloads — sent
as they are over HTTP, joined for gRPC (which takes one buffer).

Retryable answers follow the OTLP specification: gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
CANCELLED, OUT_OF_RANGE, DATA_LOSS and RESOURCE_EXHAUSTED-with-RetryInfo; HTTP 429, 502, 503,
504 and connection errors (the sender retries them, after the server's Retry-After / RetryInfo
when it gives one). Anything else (HTTP 400, gRPC INVALID_ARGUMENT, …) is permanent: the sender
drops the request and counts it by reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otelml.gateway.exporters.http import HttpConnection, HttpError, http_failure
from otelml.gateway.exporters.sender import Outcome, joined
from otelml.semconv import Signal

_SERVICES = {
    "spans": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "log_records": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_HTTP_PATHS = {"spans": "/v1/traces", "log_records": "/v1/logs"}
_RETRYABLE_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DATA_LOSS,
}
_RETRYABLE_HTTP = {429, 502, 503, 504}
#: Items a destination said it rejected in an OTLP partial success (counted as failed).
REJECTED = "rejected_by_destination"


class GrpcTransport:
    """OTLP/gRPC client. Calls are blocking grpcio calls run in a worker thread: grpcio's C core
    does the I/O without the GIL, so sending costs the event loop (the receivers) far less than
    an asyncio call of the same size."""

    def __init__(
        self,
        endpoint: str,
        signal: Signal,
        headers: dict[str, str],
        timeout: float,
        ca_file: Path | None = None,
    ):
        self._target = endpoint.split("://", 1)[-1].rstrip("/")
        self._method = _SERVICES[signal]
        self._signal = signal
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._timeout = timeout
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if endpoint.startswith("https://") or ca_file is not None:
            roots = ca_file.read_bytes() if ca_file is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self._channel = grpc.secure_channel(self._target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self._target, options=options)
        self._export = self._channel.unary_unary(
            self._method, request_serializer=None, response_deserializer=None
        )

    def _send(self, payload: bytes) -> Outcome:
        try:
            answer = self._export(payload, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            code = error.code()
            retry_after = _retry_info(error.trailing_metadata())
            reason = code.name.lower()
            if code in _RETRYABLE_GRPC or (
                code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None
            ):
                return Outcome(False, True, retry_after, reason)
            return Outcome(False, False, None, reason)
        return Outcome(True, dropped=_rejected(self._signal, answer))

    async def send(self, parts: list[bytes]) -> Outcome:
        return await asyncio.to_thread(self._send, joined(parts))

    async def close(self) -> None:
        self._channel.close()


def _retry_info(metadata: object) -> float | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


class HttpTransport:
    """OTLP/HTTP client (protobuf): the batch's payloads leave as they are, in one write."""

    def __init__(
        self,
        endpoint: str,
        signal: Signal,
        headers: dict[str, str],
        timeout: float,
        ca_file: Path | None = None,
    ):
        base = endpoint.rstrip("/")
        path = _HTTP_PATHS[signal]
        self.url = base if base.endswith(path) else base + path
        self._signal = signal
        self._connection = HttpConnection(
            self.url, {**headers, "Content-Type": "application/x-protobuf"}, timeout, ca_file
        )

    async def send(self, parts: list[bytes]) -> Outcome:
        try:
            response = await self._connection.post(parts)
        except HttpError as error:
            return Outcome(False, True, None, error.reason)
        if response.status < 300:
            if response.headers.get("content-type", "").startswith("application/x-protobuf"):
                return Outcome(True, dropped=_rejected(self._signal, response.body))
            return Outcome(True)
        return http_failure(response, response.status in _RETRYABLE_HTTP)

    async def close(self) -> None:
        self._connection.close()


def _rejected(signal: Signal, answer: bytes | None) -> dict[str, int]:
    """Items the destination's OTLP partial success says it rejected."""
    if not answer:
        return {}
    try:
        if signal == "spans":
            count = ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans
        else:
            logs = ExportLogsServiceResponse.FromString(answer)
            count = logs.partial_success.rejected_log_records
    except DecodeError:
        return {}
    return {REJECTED: int(count)} if count > 0 else {}
