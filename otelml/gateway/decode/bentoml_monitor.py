"""BentoML's `bentoml.monitor` OTLP log records, read as they are.

BentoML's OTLP monitor writes one log record per inference whose *body* is a map: the logged
columns, `request_id`, `trace_id` (a decimal integer), and — on every record unless
`meta_sample_rate` < 1 — `bento_meta` with `monitor_name`, `bento_version` and a `schema`
giving each column's role (`feature`, `prediction`, `target`). The gateway's scanner reads
`ml.*` attributes only, so such records are rewritten into that form here: the monitor name
becomes the model (`ml.model.name`), the Bento version its version, feature columns
`ml.feature.<column>`, prediction columns `ml.prediction.<column>`. The forwarded request is
the original one: Loki receives the records unchanged.

Schemas are remembered per service (BentoML names it `<bento>:<monitor>`), so records sent
without `bento_meta` are still read. Records of a monitor never seen with a schema are counted
in `unread` and skipped. Only requests that mention `bento_meta` or a known service are parsed
(a byte search), so other log traffic pays nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otelml import semconv

_META = "bento_meta"
_ROLES = {"feature": semconv.FEATURE_PREFIX, "prediction": semconv.PREDICTION_PREFIX}
_RESERVED = {"timestamp", "request_id", "trace_id", _META}
_NO_VERSION = {"", "not available"}


@dataclass(frozen=True)
class Schema:
    model: str
    version: str
    keys: dict[str, str]  # column → ml.* attribute key


#: Services whose monitor schema is remembered, at most.
MAX_SCHEMAS = 1000


class BentoMonitorReader:
    def __init__(self, counts: Counter[str] | None = None) -> None:
        self._schemas: dict[str, Schema] = {}
        self._services: list[bytes] = []
        #: Records by outcome, "read" or "unread" (the gateway passes its self-metrics').
        self.counts: Counter[str] = Counter() if counts is None else counts

    def rewrite(self, payload: bytes) -> bytes | None:
        """An ExportLogsServiceRequest of the monitor records in `ml.*` form, or None."""
        if _META.encode() not in payload and not any(s in payload for s in self._services):
            return None
        try:
            request = ExportLogsServiceRequest.FromString(payload)
        except DecodeError:  # e.g. invalid UTF-8 the scanner tolerated: leave the records be
            return None
        out = ExportLogsServiceRequest()
        for resource_logs in request.resource_logs:
            service = _service_name(resource_logs.resource.attributes)
            rewritten: list[LogRecord] = []
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    if record.body.WhichOneof("value") != "kvlist_value":
                        continue
                    columns = {kv.key: kv.value for kv in record.body.kvlist_value.values}
                    schema = self._schema(service, columns)
                    if schema is None:
                        if _META in columns or "request_id" in columns:
                            self.counts["unread"] += 1
                        continue
                    rewritten.append(_as_ml(record, columns, schema))
            if rewritten:
                target = out.resource_logs.add()
                target.resource.CopyFrom(resource_logs.resource)
                target.scope_logs.add().log_records.extend(rewritten)
                self.counts["read"] += len(rewritten)
        return out.SerializeToString() if out.resource_logs else None

    def _schema(self, service: str, columns: dict[str, AnyValue]) -> Schema | None:
        meta = columns.get(_META)
        if meta is None or meta.WhichOneof("value") != "kvlist_value":
            return self._schemas.get(service)
        fields = {kv.key: kv.value for kv in meta.kvlist_value.values}
        keys = {}
        for column in fields.get("schema", AnyValue()).kvlist_value.values:
            spec = {kv.key: kv.value.string_value for kv in column.value.kvlist_value.values}
            prefix = _ROLES.get(spec.get("role", ""))
            if prefix is not None:
                keys[column.key] = prefix + column.key
        model = fields.get("monitor_name", AnyValue()).string_value
        if not model or not keys:
            return None
        version = fields.get("bento_version", AnyValue()).string_value
        schema = Schema(model, "" if version in _NO_VERSION else version, keys)
        if service not in self._schemas and len(self._schemas) >= MAX_SCHEMAS:
            return None  # bounded under any stream of service names: counted as unread
        if service and service not in self._schemas:
            self._services.append(service.encode())
        self._schemas[service] = schema
        return schema


def _service_name(attributes: object) -> str:
    for kv in attributes:  # type: ignore[attr-defined]
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return ""


def _as_ml(record: LogRecord, columns: dict[str, AnyValue], schema: Schema) -> LogRecord:
    out = LogRecord(
        time_unix_nano=record.time_unix_nano,
        observed_time_unix_nano=record.observed_time_unix_nano,
        trace_id=record.trace_id or _hex_trace_id(columns.get("trace_id")),
        span_id=record.span_id,
        flags=record.flags,
    )
    attributes = [KeyValue(key=semconv.MODEL_NAME, value=AnyValue(string_value=schema.model))]
    if schema.version:
        attributes.append(
            KeyValue(key=semconv.MODEL_VERSION, value=AnyValue(string_value=schema.version))
        )
    for column, key in schema.keys.items():
        value = columns.get(column)
        if value is not None and column not in _RESERVED:
            attributes.append(KeyValue(key=key, value=value))
    out.attributes.extend(attributes)
    return out


def _hex_trace_id(value: AnyValue | None) -> bytes:
    """BentoML's decimal trace id → the 16 bytes OTLP uses (empty when absent or malformed)."""
    if value is None:
        return b""
    text = value.string_value or str(value.int_value)
    try:
        number = int(text)
    except ValueError:
        return b""
    return number.to_bytes(16, "big") if 0 < number < 1 << 128 else b""
