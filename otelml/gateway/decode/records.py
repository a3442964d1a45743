"""Columnar records decoded from one OTLP Export request (spans or log records).

The decoder hands the pipeline numpy arrays indexed by record, plus the `ml.*` attributes as
(record index, key code, Arrow value) columns: the only per-item work is done in Rust (ptars)
and in numpy/Arrow kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelml import semconv
from otelml.errors import Permanent
from otelml.gateway.decode.view import handlers

_SERVICE_NAME = "service.name"
_UNKNOWN_SERVICE = "unknown_service"

Int64Array = npt.NDArray[np.int64]
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True)
class Records:
    """Spans or log records of one request, column by column.

    `attr_*` hold only the `ml.*` attributes: entry i belongs to record `attr_record[i]`, its key
    is `keys[attr_key[i]]`, its value is `attr_values[i]` (the OTLP AnyValue view struct).
    """

    count: int
    trace_id: npt.NDArray[np.uint8]  # (count, 16); all zeros where absent
    span_id: npt.NDArray[np.uint8]  # (count, 8)
    time_s: npt.NDArray[np.float64]  # span end time or log time, Unix seconds
    keys: list[str]
    attr_record: Int64Array
    attr_key: Int64Array
    attr_values: pa.StructArray
    # spans only (empty for logs)
    services: list[str] = field(default_factory=list)
    service: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    names: list[str] = field(default_factory=list)
    name: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    kind: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    status: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    duration_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


def decode_traces(payload: bytes) -> Records:
    """Decode an `ExportTraceServiceRequest`; raises `Permanent` if it is not one."""
    traces_handler, _ = handlers()
    batch = _parse(traces_handler, payload)
    resources = _flatten(batch.column(0))
    scopes_list = resources.field("scope_spans")
    scopes = _flatten(scopes_list)
    spans_list = scopes.field("spans")
    spans = _flatten(spans_list)
    scope_resource = _parents(scopes_list)
    span_resource = scope_resource[_parents(spans_list)]

    services, resource_service = _service_names(resources)
    names_encoded = _dictionary(spans.field("name"))
    start = _numpy(spans.field("start_time_unix_nano"), np.uint64)
    end = _numpy(spans.field("end_time_unix_nano"), np.uint64)
    # Durations are differences of nanosecond integers: exact before conversion to seconds.
    duration_ns = np.where(end >= start, end - start, 0).astype(np.float64)
    status = spans.field("status").field("code")
    keys, attr_record, attr_key, attr_values = _ml_attributes(spans.field("attributes"))
    return Records(
        count=len(spans),
        trace_id=_fixed_ids(spans.field("trace_id"), 16),
        span_id=_fixed_ids(spans.field("span_id"), 8),
        time_s=end.astype(np.float64) / 1e9,
        keys=keys,
        attr_record=attr_record,
        attr_key=attr_key,
        attr_values=attr_values,
        services=services,
        service=resource_service[span_resource] if len(spans) else np.zeros(0, np.int64),
        names=names_encoded[1],
        name=names_encoded[0],
        kind=_numpy(spans.field("kind"), np.int32),
        status=_numpy(pc.fill_null(status, 0), np.int32),
        duration_s=duration_ns / 1e9,
    )


def decode_logs(payload: bytes) -> Records:
    """Decode an `ExportLogsServiceRequest`; raises `Permanent` if it is not one."""
    _, logs_handler = handlers()
    batch = _parse(logs_handler, payload)
    resources = _flatten(batch.column(0))
    scopes = _flatten(resources.field("scope_logs"))
    logs = _flatten(scopes.field("log_records"))
    time_ns = _numpy(logs.field("time_unix_nano"), np.uint64)
    observed_ns = _numpy(logs.field("observed_time_unix_nano"), np.uint64)
    keys, attr_record, attr_key, attr_values = _ml_attributes(logs.field("attributes"))
    return Records(
        count=len(logs),
        trace_id=_fixed_ids(logs.field("trace_id"), 16),
        span_id=_fixed_ids(logs.field("span_id"), 8),
        time_s=np.where(time_ns > 0, time_ns, observed_ns).astype(np.float64) / 1e9,
        keys=keys,
        attr_record=attr_record,
        attr_key=attr_key,
        attr_values=attr_values,
    )


def _parse(handler: object, payload: bytes) -> pa.RecordBatch:
    try:
        return handler.list_to_record_batch([payload])  # type: ignore[attr-defined]
    except ValueError as exc:
        raise Permanent(f"malformed protobuf: {exc}", reason="malformed") from None


def _flatten(array: pa.Array) -> pa.StructArray:
    return array.flatten()


def _parents(list_array: pa.ListArray) -> Int64Array:
    return np.asarray(list_array.value_parent_indices(), dtype=np.int64)


def _numpy(array: pa.Array, dtype: type[_T]) -> npt.NDArray[_T]:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=dtype)


def _dictionary(strings: pa.Array) -> tuple[Int64Array, list[str]]:
    encoded = pc.dictionary_encode(strings)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()


def _fixed_ids(ids: pa.BinaryArray, width: int) -> npt.NDArray[np.uint8]:
    """Binary column of ids → (n, width) uint8; ids of any other length become zeros (absent)."""
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1]
    data_buffer = ids.buffers()[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    if n and (lengths == width).all():
        return data[offsets[0] : offsets[-1]].reshape(n, width).copy()
    out = np.zeros((n, width), dtype=np.uint8)
    for row in np.flatnonzero(lengths == width):
        out[row] = data[offsets[row] : offsets[row] + width]
    return out


def _service_names(resources: pa.StructArray) -> tuple[list[str], Int64Array]:
    """Per resource, the code of its `service.name` in the returned list."""
    attributes_list = resources.field("resource").field("attributes")
    attributes = _flatten(attributes_list)
    parents = _parents(attributes_list)
    is_service = np.asarray(pc.equal(attributes.field("key"), _SERVICE_NAME).to_numpy(False), bool)
    names = [_UNKNOWN_SERVICE]
    codes = np.zeros(len(resources), dtype=np.int64)
    values = attributes.field("value").field("string_value")
    for index in np.flatnonzero(is_service):
        name = values[int(index)].as_py() or _UNKNOWN_SERVICE
        if name not in names:
            names.append(name)
        codes[parents[index]] = names.index(name)
    return names, codes


def _ml_attributes(
    attributes_list: pa.ListArray,
) -> tuple[list[str], Int64Array, Int64Array, pa.StructArray]:
    attributes = _flatten(attributes_list)
    keys = attributes.field("key")
    is_ml = pc.starts_with(keys, semconv.ML_PREFIX)
    selected = np.flatnonzero(np.asarray(is_ml.to_numpy(zero_copy_only=False), dtype=bool))
    record = _parents(attributes_list)[selected]
    codes, key_names = _dictionary(keys.take(selected))
    values = attributes.field("value").take(selected)
    return key_names, record, codes, values
