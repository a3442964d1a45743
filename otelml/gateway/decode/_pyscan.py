"""The OTLP scan in pure Python: the fallback where the C scanner is not built, and its oracle.

Produces exactly what `_otlpscan.scan` produces (same columns, same interning order), from
the official protobuf classes. ~15× slower: it creates Python objects per attribute. One
difference: protobuf rejects invalid UTF-8 in strings, where the C scanner substitutes U+FFFD.
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelml.gateway.decode.kinds import (
    KIND_BOOL,
    KIND_DOUBLE,
    KIND_INT,
    KIND_NULL,
    KIND_OTHER,
    KIND_STRING,
)

#: The most context keys one scan keeps (the C scanner's fixed array).
MAX_CONTEXT = 16


class _Interner:
    def __init__(self, *initial: str) -> None:
        self.codes: dict[str, int] = {}
        for value in initial:
            self.code(value)

    def code(self, value: str) -> int:
        return self.codes.setdefault(value, len(self.codes))

    def values(self) -> list[str]:
        return list(self.codes)


def _scalar(value: AnyValue) -> tuple[int, float, int, str | None]:
    which = value.WhichOneof("value")
    if which == "string_value":
        return KIND_STRING, 0.0, 0, value.string_value
    if which == "bool_value":
        return KIND_BOOL, float(value.bool_value), int(value.bool_value), None
    if which == "int_value":
        return KIND_INT, float(value.int_value), value.int_value, None
    if which == "double_value":
        return KIND_DOUBLE, value.double_value, 0, None
    if which is None:
        return KIND_NULL, 0.0, 0, None
    return KIND_OTHER, 0.0, 0, None


#: Every column but the ids, with its `struct` format (the C scanner's layout).
_FORMATS = {
    "start": "Q",
    "end": "Q",
    "kind": "i",
    "status": "i",
    "name": "i",
    "service": "i",
    "leaf_record": "i",
    "leaf_key": "i",
    "leaf_kind": "b",
    "leaf_number": "d",
    "leaf_integer": "q",
    "leaf_text": "i",
    "leaf_from_array": "B",
    "leaf_entry": "i",
}


class _Columns:
    """The scan's output, filled record by record."""

    def __init__(self, prefix: str, context: tuple[str, ...] = (), max_leaves: int = 0) -> None:
        self.prefix = prefix
        self.max_leaves = max_leaves
        self.context = {key: i for i, key in reversed(list(enumerate(context)))}
        self.n_context = len(context)
        self.block_context = [-1] * len(context)
        self.record_context: list[int] = []
        self.context_codes: list[int] = []
        self.keys, self.strings, self.names = _Interner(), _Interner(), _Interner()
        self.services = _Interner("unknown_service")
        self.columns: dict[str, list[Any]] = {n: [] for n in ("trace_id", "span_id", *_FORMATS)}
        self.entry = 0  # attribute entries seen: one per attribute, whatever its leaves

    def service_of(self, resource: Any) -> int:
        """The resource's non-empty string `service.name` (the last, as the C scanner keeps)."""
        service = 0  # unknown_service
        self.block_context = [-1] * self.n_context
        for attribute in resource.attributes:
            value = attribute.value
            self._context_value(attribute, self.block_context)
            if (
                attribute.key == "service.name"
                and value.WhichOneof("value") == "string_value"
                and value.string_value
            ):
                service = self.services.code(value.string_value)
        return service

    def _context_value(self, attribute: Any, slots: list[int]) -> None:
        """A context key's string value, interned into `slots` (other kinds leave it as is)."""
        index = self.context.get(attribute.key)
        value = attribute.value
        if index is not None and value.WhichOneof("value") == "string_value":
            slots[index] = self.strings.code(value.string_value)

    def add_leaves(self, record: int, attributes: Any) -> None:
        """One leaf per value of each prefixed attribute (an array gives one per element)."""
        columns = self.columns
        self.record_context = list(self.block_context)
        for attribute in attributes:
            _check_nesting([attribute])
            self._context_value(attribute, self.record_context)
            if not attribute.key.startswith(self.prefix):
                continue
            key = self.keys.code(attribute.key)
            value = attribute.value
            if value.WhichOneof("value") == "array_value":
                elements = [(e, 1) for e in value.array_value.values]
            else:
                elements = [(value, 0)]
            for element, from_array in elements:
                kind, number, integer, text = _scalar(element)
                if from_array and element.WhichOneof("value") == "array_value":
                    kind = KIND_OTHER
                if self.max_leaves and len(columns["leaf_kind"]) >= self.max_leaves:
                    raise OverflowError(f"more than {self.max_leaves} ml.* values")
                columns["leaf_record"].append(record)
                columns["leaf_key"].append(key)
                columns["leaf_kind"].append(kind)
                columns["leaf_number"].append(number)
                columns["leaf_integer"].append(integer)
                columns["leaf_text"].append(-1 if text is None else self.strings.code(text))
                columns["leaf_from_array"].append(from_array)
                columns["leaf_entry"].append(self.entry)
            self.entry += 1

    def add_record(self, record: Any, service: int, logs: bool) -> None:
        columns = self.columns
        columns["trace_id"].append(record.trace_id if len(record.trace_id) == 16 else bytes(16))
        columns["span_id"].append(record.span_id if len(record.span_id) == 8 else bytes(8))
        if logs:
            columns["start"].append(0)
            columns["end"].append(record.time_unix_nano or record.observed_time_unix_nano)
            columns["kind"].append(0)
            columns["status"].append(0)
            columns["name"].append(self.names.code(""))
        else:
            columns["start"].append(record.start_time_unix_nano)
            columns["end"].append(record.end_time_unix_nano)
            columns["kind"].append(record.kind)
            columns["status"].append(record.status.code)
            columns["name"].append(self.names.code(record.name))
        columns["service"].append(service)
        self.context_codes.extend(self.record_context)

    def packed(self) -> dict[str, Any]:
        columns = self.columns
        out: dict[str, Any] = {
            "count": len(columns["trace_id"]),
            "trace_id": b"".join(columns["trace_id"]),
            "span_id": b"".join(columns["span_id"]),
        }
        for name, code in _FORMATS.items():
            out[name] = struct.pack(f"<{len(columns[name])}{code}", *columns[name])
        out["context"] = struct.pack(f"<{len(self.context_codes)}i", *self.context_codes)
        out.update(
            keys=self.keys.values(),
            strings=self.strings.values(),
            names=self.names.values(),
            services=self.services.values(),
        )
        return out


#: Arrays and kvlists within each other, at most (the C scanner's MAX_NESTING).
MAX_NESTING = 16


def _nesting_within(value: Any, budget: int) -> bool:
    which = value.WhichOneof("value")
    if which == "array_value":
        return budget > 0 and all(_nesting_within(v, budget - 1) for v in value.array_value.values)
    if which == "kvlist_value":
        return budget > 0 and all(
            _nesting_within(kv.value, budget - 1) for kv in value.kvlist_value.values
        )
    return True


def _check_nesting(attributes: Any) -> None:
    """Each entry's value (a log record's body stands in for one) within MAX_NESTING."""
    for entry in attributes:
        value = entry.body if hasattr(entry, "body") else entry.value
        if not _nesting_within(value, MAX_NESTING):
            raise ValueError("attribute value malformed or nested deeper than 16 arrays/kvlists")


def scan(
    payload: bytes,
    logs: bool,
    prefix: bytes,
    context: tuple[bytes, ...] = (),
    max_leaves: int = 0,
) -> dict[str, Any]:
    """The C scanner's twin: OverflowError past `max_leaves` values (0: no limit)."""
    # One walk for both signals: the two message trees differ only in field names.
    message: Any = ExportLogsServiceRequest() if logs else ExportTraceServiceRequest()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise ValueError(str(exc) or "malformed protobuf") from None
    if len(context) > MAX_CONTEXT:
        raise ValueError(f"at most {MAX_CONTEXT} context keys")
    out = _Columns(prefix.decode(), tuple(key.decode() for key in context), max_leaves)
    for block in message.resource_logs if logs else message.resource_spans:
        _check_nesting(block.resource.attributes)
        service = out.service_of(block.resource)
        for scope in block.scope_logs if logs else block.scope_spans:
            _check_nesting(scope.scope.attributes)
            for record in scope.log_records if logs else scope.spans:
                if logs:
                    _check_nesting([record])  # the body, an AnyValue like an attribute's
                else:
                    for nested in (*record.events, *record.links):
                        _check_nesting(nested.attributes)
                out.add_leaves(len(out.columns["trace_id"]), record.attributes)
                out.add_record(record, service, logs)
    return out.packed()
