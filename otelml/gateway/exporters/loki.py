"""Loki's limits, kept before sending: long lines truncated, large requests split.

Loki refuses (400) a log line over its `max_line_size` (256 KB by default) unless it truncates
it itself, and requests over its gRPC/HTTP message size (4 MB by default). Requests within both
limits go out unchanged; others are rewritten: bodies cut to `max_line_bytes` (with a marker),
records split into requests under `max_request_bytes`. Chunks already delivered are not sent
again when a later chunk is retried.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otelml.gateway.exporters.sender import Outcome, Transport, joined

TRUNCATED = " …[truncated by otelml]"


def _truncate(value: Any, limit: int) -> int:
    if value.WhichOneof("value") == "string_value":
        raw = value.string_value.encode()
        if len(raw) > limit:
            keep = raw[: max(0, limit - len(TRUNCATED.encode()))].decode(errors="ignore")
            value.string_value = keep + TRUNCATED
            return 1
    return 0


def prepare(payload: bytes, max_line_bytes: int, max_request_bytes: int) -> tuple[list[bytes], int]:
    """(requests to send, lines truncated); the payload itself when nothing needs changing."""
    request = ExportLogsServiceRequest.FromString(payload)
    truncated = 0
    for resource_logs in request.resource_logs:
        for scope in resource_logs.scope_logs:
            for record in scope.log_records:
                truncated += _truncate(record.body, max_line_bytes)
    if not truncated and len(payload) <= max_request_bytes:
        return [payload], 0
    chunks: list[bytes] = []
    current = ExportLogsServiceRequest()
    size = 0
    budget = int(max_request_bytes * 0.9)  # margin for the framing of resources and scopes
    for resource_logs in request.resource_logs:
        overhead = resource_logs.resource.ByteSize() + 16
        for scope in resource_logs.scope_logs:
            overhead += scope.scope.ByteSize() + 16
            for record in scope.log_records:
                record_size = record.ByteSize() + 8
                if size and size + record_size + overhead > budget:
                    chunks.append(current.SerializeToString())
                    current, size = ExportLogsServiceRequest(), 0
                _slot(current, resource_logs, scope).log_records.add().CopyFrom(record)
                size += record_size
    if current.ByteSize():
        chunks.append(current.SerializeToString())
    return chunks, truncated


def _slot(request: ExportLogsServiceRequest, resource_logs: Any, scope: Any) -> Any:
    """The scope-logs of `request` matching the source's resource and scope (added if new)."""
    for mine in request.resource_logs:
        if mine.resource == resource_logs.resource and mine.schema_url == resource_logs.schema_url:
            for my_scope in mine.scope_logs:
                if my_scope.scope == scope.scope and my_scope.schema_url == scope.schema_url:
                    return my_scope
            new_scope = mine.scope_logs.add(schema_url=scope.schema_url)
            new_scope.scope.CopyFrom(scope.scope)
            return new_scope
    mine = request.resource_logs.add(schema_url=resource_logs.schema_url)
    mine.resource.CopyFrom(resource_logs.resource)
    new_scope = mine.scope_logs.add(schema_url=scope.schema_url)
    new_scope.scope.CopyFrom(scope.scope)
    return new_scope


class LokiLimits:
    """Wraps a logs transport with Loki's line and request size limits."""

    def __init__(self, inner: Transport, max_line_bytes: int, max_request_bytes: int) -> None:
        self.inner = inner
        self.max_line_bytes = max_line_bytes
        self.max_request_bytes = max_request_bytes
        self.truncated_lines = 0
        self._progress: tuple[int, int] = (0, 0)  # (payload id, chunks delivered)

    async def send(self, parts: list[bytes]) -> Outcome:
        payload = joined(parts)
        chunks, truncated = prepare(payload, self.max_line_bytes, self.max_request_bytes)
        key = hash(payload)
        done = self._progress[1] if self._progress[0] == key else 0
        if done == 0:
            self.truncated_lines += truncated
        for index in range(done, len(chunks)):
            outcome = await self.inner.send([chunks[index]])
            if not outcome.ok:
                self._progress = (key, index)
                return outcome
        self._progress = (0, 0)
        return Outcome(True)

    async def close(self) -> None:
        await self.inner.close()
