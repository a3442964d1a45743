"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs on :4318, protobuf or JSON, optionally gzip.

Status codes, as the OTLP spec defines them for receivers:
- 200 with an Export*ServiceResponse (`partial_success` when some items were rejected);
- 400 malformed body (protobuf, JSON or gzip), with a google.rpc.Status body;
- 405 wrong method (with `Allow: POST`), 415 unsupported Content-Type or Content-Encoding;
- 401 missing or wrong bearer token (before any other check);
- 408 body not received within `limits.body_timeout` (a slow client);
- 413 body larger than `limits.max_request_bytes` after decompression;
- 503 + Retry-After when load is shed (the client retries).
Responses use the request's encoding: protobuf in, protobuf out; JSON in, JSON out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otelml.errors import Permanent, Refused
from otelml.gateway.consumer import Consumer, ExportResult, GroundTruthItem
from otelml.gateway.receivers.admission import read_body
from otelml.gateway.receivers.guard import Guard, Reservation
from otelml.gateway.receivers.otlp_json import (
    logs_to_protobuf,
    metrics_to_protobuf,
    response_json,
    traces_to_protobuf,
)
from otelml.gateway.receivers.responses import (
    logs_response,
    metrics_response,
    traces_response,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRANSPORT = "http"


def _encode(message: Message, json: bool) -> Response:
    if json:
        return Response(response_json(message), media_type=JSON)
    return Response(message.SerializeToString(), media_type=PROTOBUF)


def _error(
    status: int, message: str, json: bool, headers: dict[str, str] | None = None
) -> Response:
    code = {
        400: code_pb2.INVALID_ARGUMENT,
        408: code_pb2.DEADLINE_EXCEEDED,
        413: code_pb2.INVALID_ARGUMENT,
    }.get(status, code_pb2.UNAVAILABLE if status in (429, 503) else code_pb2.UNKNOWN)
    response = _encode(status_pb2.Status(code=code, message=message), json)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    if status in (408, 413):
        # The body was not read to its end: what follows on the connection is not a request.
        response.headers["Connection"] = "close"
    return response


@dataclass(frozen=True)
class _Refusal:
    """A request refused before its body is read: status, message, headers, counted reason."""

    status: int
    message: str
    reason: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class _Accepted:
    json: bool
    gzip: bool
    content_length: int | None


def _check(request: Request, guard: Guard, media_types: tuple[str, ...]) -> _Accepted | _Refusal:
    """Bearer token, method, Content-Type, Content-Encoding: the same for every endpoint."""
    # The token first: who is not authenticated learns nothing of what the endpoint takes.
    if not guard.authorized(request.headers.get("authorization")):
        return _Refusal(
            401, "missing or wrong bearer token", "unauthenticated", {"WWW-Authenticate": "Bearer"}
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST":
        return _Refusal(405, "use POST", "method_not_allowed", {"Allow": "POST"})
    if content_type not in media_types:
        return _Refusal(
            415,
            f"unsupported Content-Type {content_type!r}; use {' or '.join(media_types)}",
            "unsupported_media_type",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        return _Refusal(
            415,
            f"unsupported Content-Encoding {encoding!r}; use gzip or none",
            "unsupported_encoding",
        )
    length_header = request.headers.get("content-length")
    content_length = int(length_header) if length_header and length_header.isdigit() else None
    return _Accepted(content_type == JSON, encoding == "gzip", content_length)


async def _body(
    request: Request,
    checked: _Accepted,
    max_request_bytes: int,
    reservation: Reservation,
    body_timeout: float | None,
) -> bytes:
    return await read_body(
        request.stream(),
        max_request_bytes,
        checked.gzip,
        checked.content_length,
        reservation.charge,
        body_timeout,
    )


def _endpoint(
    pipeline: Consumer,
    max_request_bytes: int,
    body_timeout: float | None,
    guard: Guard,
    consume: Callable[[bytes, str], ExportResult],
    from_json: Callable[[bytes], bytes],
    respond: Callable[[ExportResult], Message],
) -> Callable[[Request], object]:
    stats = pipeline.stats

    async def export(request: Request) -> Response:
        checked = _check(request, guard, (PROTOBUF, JSON))
        if isinstance(checked, _Refusal):
            stats.refuse_request(TRANSPORT, checked.reason)
            json = request.headers.get("content-type", "").split(";")[0].strip().lower() == JSON
            return _error(checked.status, checked.message, json, checked.headers)
        json = checked.json
        try:
            # Admission charges what has arrived: a slow body holds only what it sent.
            with guard.reserve() as reservation:
                body = await _body(request, checked, max_request_bytes, reservation, body_timeout)
                payload = from_json(body) if json else body
                result = consume(payload, TRANSPORT)
        except Permanent as exc:
            stats.refuse_request(TRANSPORT, exc.reason)
            return _error(exc.http_status, str(exc), json)
        except Refused as exc:
            stats.refuse_request(TRANSPORT, "refused")
            return _error(503, str(exc), json, {"Retry-After": _retry_after(exc)})
        return _encode(respond(result), json)

    return export


def _retry_after(refused: Refused) -> str:
    return str(max(1, round(refused.retry_after)))


_GROUND_TRUTH = TypeAdapter(list[GroundTruthItem])


def _ground_truth_endpoint(
    pipeline: Consumer, max_request_bytes: int, body_timeout: float | None, guard: Guard
) -> Callable[[Request], object]:
    """POST /v1/ground_truth: `[{"prediction_id": …, "value": …, "output"?: …, "model"?: …}]`.

    The same checks and admission as the OTLP endpoints; answers are plain JSON.
    """
    stats = pipeline.stats

    async def post(request: Request) -> Response:
        checked = _check(request, guard, (JSON,))
        if isinstance(checked, _Refusal):
            stats.refuse_request(TRANSPORT, checked.reason)
            return JSONResponse({"message": checked.message}, checked.status, checked.headers)
        try:
            with guard.reserve() as reservation:
                body = await _body(request, checked, max_request_bytes, reservation, body_timeout)
                result = pipeline.consume_ground_truth(_ground_truth_items(body))
        except Permanent as exc:
            stats.refuse_request(TRANSPORT, exc.reason)
            return JSONResponse({"message": str(exc)}, exc.http_status)
        except Refused as exc:
            stats.refuse_request(TRANSPORT, "refused")
            return JSONResponse(
                {"message": str(exc)}, 503, headers={"Retry-After": _retry_after(exc)}
            )
        return JSONResponse({"accepted": result.accepted})

    return post


def _ground_truth_items(body: bytes) -> list[GroundTruthItem]:
    try:
        return _GROUND_TRUTH.validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise Permanent(f"invalid ground truth: {problems}", "malformed") from None


def create_app(
    pipeline: Consumer,
    max_request_bytes: int,
    guard: Guard | None = None,
    body_timeout: float | None = None,
) -> Starlette:
    """`body_timeout`: seconds a request's body may take to arrive (None: no limit)."""
    guard = guard or Guard()
    methods = ["POST", "GET", "PUT", "DELETE", "PATCH"]
    return Starlette(
        routes=[
            Route(
                "/v1/traces",
                _endpoint(
                    pipeline,
                    max_request_bytes,
                    body_timeout,
                    guard,
                    pipeline.consume_traces,
                    traces_to_protobuf,
                    traces_response,
                ),
                methods=methods,
            ),
            Route(
                "/v1/metrics",
                _endpoint(
                    pipeline,
                    max_request_bytes,
                    body_timeout,
                    guard,
                    pipeline.consume_metrics,
                    metrics_to_protobuf,
                    metrics_response,
                ),
                methods=methods,
            ),
            Route(
                "/v1/ground_truth",
                _ground_truth_endpoint(pipeline, max_request_bytes, body_timeout, guard),
                methods=methods,
            ),
            Route(
                "/v1/logs",
                _endpoint(
                    pipeline,
                    max_request_bytes,
                    body_timeout,
                    guard,
                    pipeline.consume_logs,
                    logs_to_protobuf,
                    logs_response,
                ),
                methods=methods,
            ),
        ]
    )
