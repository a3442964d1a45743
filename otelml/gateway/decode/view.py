"""Slim "view" protobuf schemas of OTLP requests, for the columnar decoder.

Protobuf skips fields a schema does not declare, so a view that names only what the gateway
reads (ids, times, kind, status, attributes) decodes an OTLP request ~1.5× faster than the full
schema. The view also replaces OTLP's recursive `AnyValue` (arrays of AnyValue) by a two-level,
non-recursive one, so arrays of scalars — a batch of feature values — decode into Arrow
columns instead of opaque bytes. Field numbers are those of opentelemetry-proto v1.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor_pb2 import FieldDescriptorProto

_PACKAGE = "otelml.view"
_OPTIONAL = FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = FieldDescriptorProto.LABEL_REPEATED
_STRING = FieldDescriptorProto.TYPE_STRING
_BYTES = FieldDescriptorProto.TYPE_BYTES
_BOOL = FieldDescriptorProto.TYPE_BOOL
_INT64 = FieldDescriptorProto.TYPE_INT64
_INT32 = FieldDescriptorProto.TYPE_INT32
_DOUBLE = FieldDescriptorProto.TYPE_DOUBLE
_FIXED64 = FieldDescriptorProto.TYPE_FIXED64
_MESSAGE = FieldDescriptorProto.TYPE_MESSAGE

# (name, number, type, label, message type or None)
_Field = tuple[str, int, int, int, str | None]

_SCALARS: list[_Field] = [
    ("string_value", 1, _STRING, _OPTIONAL, None),
    ("bool_value", 2, _BOOL, _OPTIONAL, None),
    ("int_value", 3, _INT64, _OPTIONAL, None),
    ("double_value", 4, _DOUBLE, _OPTIONAL, None),
    # Never valid feature values, declared as opaque bytes (same wire type as a message) only
    # so that "some other type" can be told apart from an empty AnyValue (null).
    ("kvlist_value", 6, _BYTES, _OPTIONAL, None),
    ("bytes_value", 7, _BYTES, _OPTIONAL, None),
]
_ONEOF_MEMBERS = {
    "string_value",
    "bool_value",
    "int_value",
    "double_value",
    "array_value",
    "kvlist_value",
    "bytes_value",
}

_MESSAGES: dict[str, list[_Field]] = {
    "ScalarValue": [*_SCALARS, ("array_value", 5, _BYTES, _OPTIONAL, None)],
    "ArrayValue": [("values", 1, _MESSAGE, _REPEATED, "ScalarValue")],
    "AnyValue": [*_SCALARS, ("array_value", 5, _MESSAGE, _OPTIONAL, "ArrayValue")],
    "KeyValue": [
        ("key", 1, _STRING, _OPTIONAL, None),
        ("value", 2, _MESSAGE, _OPTIONAL, "AnyValue"),
    ],
    "Resource": [("attributes", 1, _MESSAGE, _REPEATED, "KeyValue")],
    "Status": [("code", 3, _INT32, _OPTIONAL, None)],
    "Span": [
        ("trace_id", 1, _BYTES, _OPTIONAL, None),
        ("span_id", 2, _BYTES, _OPTIONAL, None),
        ("name", 5, _STRING, _OPTIONAL, None),
        ("kind", 6, _INT32, _OPTIONAL, None),
        ("start_time_unix_nano", 7, _FIXED64, _OPTIONAL, None),
        ("end_time_unix_nano", 8, _FIXED64, _OPTIONAL, None),
        ("attributes", 9, _MESSAGE, _REPEATED, "KeyValue"),
        ("status", 15, _MESSAGE, _OPTIONAL, "Status"),
    ],
    "ScopeSpans": [("spans", 2, _MESSAGE, _REPEATED, "Span")],
    "ResourceSpans": [
        ("resource", 1, _MESSAGE, _OPTIONAL, "Resource"),
        ("scope_spans", 2, _MESSAGE, _REPEATED, "ScopeSpans"),
    ],
    "TracesRequest": [("resource_spans", 1, _MESSAGE, _REPEATED, "ResourceSpans")],
    "LogRecord": [
        ("time_unix_nano", 1, _FIXED64, _OPTIONAL, None),
        ("observed_time_unix_nano", 11, _FIXED64, _OPTIONAL, None),
        ("attributes", 6, _MESSAGE, _REPEATED, "KeyValue"),
        ("trace_id", 9, _BYTES, _OPTIONAL, None),
        ("span_id", 10, _BYTES, _OPTIONAL, None),
    ],
    "ScopeLogs": [("log_records", 2, _MESSAGE, _REPEATED, "LogRecord")],
    "ResourceLogs": [
        ("resource", 1, _MESSAGE, _OPTIONAL, "Resource"),
        ("scope_logs", 2, _MESSAGE, _REPEATED, "ScopeLogs"),
    ],
    "LogsRequest": [("resource_logs", 1, _MESSAGE, _REPEATED, "ResourceLogs")],
}


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="otelml/view.proto", package=_PACKAGE, syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        has_oneof = any(name in _ONEOF_MEMBERS for name, *_ in fields)
        if has_oneof:
            message.oneof_decl.add(name="value")
        for name, number, type_, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=type_, label=label)
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if has_oneof and name in _ONEOF_MEMBERS:
                field.oneof_index = 0
    return file


@cache
def handlers() -> tuple[Any, Any]:
    """ptars handlers for (TracesRequest, LogsRequest), built once per process."""
    import ptars

    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_proto())
    file = pool.FindFileByName("otelml/view.proto")
    handler_pool = ptars.HandlerPool([file])
    traces = handler_pool.get_for_message(pool.FindMessageTypeByName(f"{_PACKAGE}.TracesRequest"))
    logs = handler_pool.get_for_message(pool.FindMessageTypeByName(f"{_PACKAGE}.LogsRequest"))
    return traces, logs
