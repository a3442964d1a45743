"""OTLP/gRPC receiver: `TraceService/Export` and `LogsService/Export` on :4317.

Requests arrive as raw bytes (no Python protobuf objects: the pipeline decodes them columnar).
Errors map as the OTLP spec and the Go collector expect: bad data → INVALID_ARGUMENT
(permanent, the client drops it); shed load → UNAVAILABLE with a RetryInfo detail (the
client retries after it). A bare RESOURCE_EXHAUSTED is never sent for load: the Go exporter
treats it as permanent. A message over `limits.max_request_bytes` (after decompression) is
RESOURCE_EXHAUSTED, permanent by design: counted as `too_large` up to twice the limit, where
grpcio's own check (uncounted) takes over.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from otelml.errors import Permanent, Refused
from otelml.gateway.consumer import Consumer, ExportResult
from otelml.gateway.receivers.admission import REASON_TOO_LARGE
from otelml.gateway.receivers.guard import Guard
from otelml.gateway.receivers.responses import (
    logs_response,
    metrics_response,
    traces_response,
)
from otelml.gateway.state.selfmetrics import ReceiverStats

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
TRANSPORT = "grpc"


def _unavailable(message: str, retry_after: float) -> status_pb2.Status:
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(
            seconds=int(retry_after), nanos=int(retry_after % 1 * 1e9)
        )
    )
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(retry)
    return status


def _handler(
    consume: Callable[[bytes, str], ExportResult],
    respond: Callable[[ExportResult], bytes],
    stats: ReceiverStats,
    guard: Guard,
    max_request_bytes: int,
) -> grpc.RpcMethodHandler:
    async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata() or ())
        if not guard.authorized(metadata.get("authorization")):
            stats.refuse_request(TRANSPORT, "unauthenticated")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if len(request) > max_request_bytes:
            # grpcio's own limit is twice this one: what falls between is refused here, as
            # grpcio would (RESOURCE_EXHAUSTED, permanent), and counted.
            stats.refuse_request(TRANSPORT, REASON_TOO_LARGE)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"message of {len(request)} bytes exceeds limits.max_request_bytes "
                f"({max_request_bytes})",
            )
        try:
            with guard.admit(len(request)):
                return respond(consume(request, TRANSPORT))
        except Permanent as exc:
            stats.refuse_request(TRANSPORT, exc.reason)
            code = (
                grpc.StatusCode.UNIMPLEMENTED
                if exc.http_status == 404
                else (grpc.StatusCode.INVALID_ARGUMENT)
            )
            await context.abort(code, str(exc))
        except Refused as exc:
            stats.refuse_request(TRANSPORT, "refused")
            await context.abort_with_status(
                rpc_status.to_status(_unavailable(str(exc), exc.retry_after))
            )
        raise AssertionError("unreachable: abort raises")

    return grpc.unary_unary_rpc_method_handler(export)


def create_server(
    pipeline: Consumer,
    max_request_bytes: int,
    reuse_port: bool = False,
    guard: Guard | None = None,
    max_connection_age: float | None = None,
    max_connection_age_grace: float | None = None,
) -> grpc.aio.Server:
    """An aio server with both services registered; the caller binds and starts it.

    `reuse_port` lets several worker processes listen on one port (the kernel spreads
    connections among them); off otherwise, so a second gateway on a taken port fails loudly.
    `max_connection_age` (seconds) closes connections older than that, so long-lived clients
    spread again over the replicas behind a Service.
    """
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", 2 * max_request_bytes),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    if max_connection_age is not None:
        options.append(("grpc.max_connection_age_ms", int(max_connection_age * 1000)))
    if max_connection_age_grace is not None:
        options.append(("grpc.max_connection_age_grace_ms", int(max_connection_age_grace * 1000)))
    server = grpc.aio.server(options=options)
    stats = pipeline.stats
    guard = guard or Guard()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                TRACE_SERVICE,
                {
                    "Export": _handler(
                        pipeline.consume_traces,
                        lambda r: traces_response(r).SerializeToString(),
                        stats,
                        guard,
                        max_request_bytes,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                METRICS_SERVICE,
                {
                    "Export": _handler(
                        pipeline.consume_metrics,
                        lambda r: metrics_response(r).SerializeToString(),
                        stats,
                        guard,
                        max_request_bytes,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                LOGS_SERVICE,
                {
                    "Export": _handler(
                        pipeline.consume_logs,
                        lambda r: logs_response(r).SerializeToString(),
                        stats,
                        guard,
                        max_request_bytes,
                    )
                },
            ),
        )
    )
    return server
