"""Build OTLP protobuf requests by hand, for tests that need exact control of the wire values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def set_value(target: AnyValue, value: Any) -> None:
    if value is None:
        return  # an empty AnyValue: null
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list | tuple):
        target.array_value.SetInParent()  # an empty list is an empty array, not null
        for item in value:
            set_value(target.array_value.values.add(), item)
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            set_value(target.kvlist_value.values.add(key=key).value, item)
    else:
        raise TypeError(type(value))


def traces(
    spans: Sequence[Mapping[str, Any]],
    service: str = "svc",
    name: str = "predict",
    first_trace: int = 1,
    resource: Mapping[str, Any] | None = None,
) -> bytes:
    """One span per attribute mapping; trace ids are first_trace, first_trace+1, … (16 bytes).

    `resource`: attributes of the resource beside `service.name`."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    for key, value in (resource or {}).items():
        set_value(resource_spans.resource.attributes.add(key=key).value, value)
    scope = resource_spans.scope_spans.add()
    for i, attributes in enumerate(spans):
        span = scope.spans.add(
            trace_id=(first_trace + i).to_bytes(16, "big"),
            span_id=(first_trace + i).to_bytes(8, "big"),
            name=name,
            kind=2,
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_000 + 5_000_000,
        )
        for key, value in attributes.items():
            set_value(span.attributes.add(key=key).value, value)
    return request.SerializeToString()


def logs(records: Sequence[Mapping[str, Any]], first_trace: int = 1) -> bytes:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for i, attributes in enumerate(records):
        record = scope.log_records.add(
            time_unix_nano=1_700_000_000_000_000_000,
            trace_id=(first_trace + i).to_bytes(16, "big"),
            span_id=(first_trace + i).to_bytes(8, "big"),
        )
        for key, value in attributes.items():
            set_value(record.attributes.add(key=key).value, value)
    return request.SerializeToString()
