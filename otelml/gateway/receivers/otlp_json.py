"""OTLP/JSON → OTLP protobuf bytes, so one columnar decoder serves both encodings.

OTLP/JSON is proto3 JSON with two differences the spec names: trace and span ids are hex
strings (not base64), and enum values are integers. Keys may be lowerCamelCase or the proto
field names; unknown fields are ignored, as the spec requires of receivers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelml.errors import Permanent

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_CONTAINERS = ("resourceSpans", "resource_spans", "resourceLogs", "resource_logs")


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite every id field in place, at any depth (spans, links, log records)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise Permanent(
                        f"{key}: not a hex string: {value[:40]!r}", "malformed"
                    ) from None
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _hex_ids_to_base64(item)


#: Objects and arrays within each other, at most: OTLP/JSON takes ~10 to reach an attribute
#: and 4 per nested kvlist, which the scanner allows 16 deep (74). Checked before the
#: recursive conversions run.
MAX_JSON_DEPTH = 100


def _depth_within(document: Any, limit: int) -> bool:
    """The document's nesting of objects and arrays, walked without recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _to_protobuf(body: bytes, message: Message) -> bytes:
    try:
        document = json.loads(body)  # its C parser stops at the interpreter's recursion limit
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Permanent(f"malformed JSON: {exc}", "malformed") from None
    if not isinstance(document, dict):
        raise Permanent("malformed OTLP/JSON: expected an object", "malformed")
    if not _depth_within(document, MAX_JSON_DEPTH):
        raise Permanent(f"malformed OTLP/JSON: nested deeper than {MAX_JSON_DEPTH}", "malformed")
    try:
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
        return message.SerializeToString()
    except (json_format.ParseError, binascii.Error, TypeError, ValueError, RecursionError) as exc:
        raise Permanent(f"malformed OTLP/JSON: {exc}", "malformed") from None


def traces_to_protobuf(body: bytes) -> bytes:
    return _to_protobuf(body, ExportTraceServiceRequest())


def logs_to_protobuf(body: bytes) -> bytes:
    return _to_protobuf(body, ExportLogsServiceRequest())


def metrics_to_protobuf(body: bytes) -> bytes:
    return _to_protobuf(body, ExportMetricsServiceRequest())


def response_json(message: Message) -> bytes:
    return json_format.MessageToJson(message, indent=None).encode()
