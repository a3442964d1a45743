"""Columnar records decoded from one OTLP Export request (spans or log records).

The scan (C, or its pure-Python twin) yields flat columns; this module only gives them numpy
views and names. Of the attributes, only `ml.*` ones are kept, as *leaves*: one scalar value
each, array attributes expanded into one leaf per element (one per batch row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.errors import Permanent
from otelml.gateway.decode import _pyscan

log = logging.getLogger(__name__)

#: (payload, logs, prefix, context keys, max_leaves) → columns; OverflowError past
#: max_leaves (0: no limit).
Scanner = Callable[[bytes, bool, bytes, tuple[bytes, ...], int], dict[str, Any]]

try:
    from otelml.gateway.decode import _otlpscan  # type: ignore[attr-defined]

    SCANNER: Scanner = _otlpscan.scan
    NATIVE = True
except ImportError:  # pragma: no cover - only where the C extension could not be built
    SCANNER = _pyscan.scan
    NATIVE = False
    log.warning("otelml: C scanner not built; decoding OTLP in pure Python (much slower)")

_PREFIX = semconv.ML_PREFIX.encode()


@dataclass(frozen=True)
class Leaves:
    """One entry per scalar `ml.*` value; `text` indexes `Records.strings` (-1: not a string)."""

    record: npt.NDArray[np.int32]
    key: npt.NDArray[np.int32]
    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]
    integer: npt.NDArray[np.int64]
    text: npt.NDArray[np.int32]
    from_array: npt.NDArray[np.bool_]
    entry: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.record)


@dataclass(frozen=True)
class Records:
    """Spans or log records of one request, column by column (codes index the string lists)."""

    count: int
    trace_id: npt.NDArray[np.uint8]  # (count, 16); zeros where absent or malformed
    span_id: npt.NDArray[np.uint8]  # (count, 8)
    time_s: npt.NDArray[np.float64]  # span end time or log time, Unix seconds
    duration_s: npt.NDArray[np.float64]  # spans only (0 for logs)
    kind: npt.NDArray[np.int32]
    status: npt.NDArray[np.int32]
    name: npt.NDArray[np.int32]
    names: list[str]
    service: npt.NDArray[np.int32]
    services: list[str]
    keys: list[str]
    strings: list[str]
    leaves: Leaves
    #: The context keys asked for (trace attributes, not features: `service.version`, …) and
    #: per record the string code of each (count, len(context_keys)); -1 where absent.
    context_keys: tuple[str, ...] = ()
    context: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 0), np.int32))


def _columns(scanned: dict[str, Any], context_keys: tuple[str, ...] = ()) -> Records:
    count = int(scanned["count"])

    def view(name: str, dtype: type[np.generic]) -> Any:
        return np.frombuffer(scanned[name], dtype=dtype)

    start = view("start", np.uint64)
    end = view("end", np.uint64)
    # Differences of integer nanoseconds are exact before the conversion to seconds.
    duration_ns = np.where(end >= start, end - start, 0).astype(np.float64)
    return Records(
        count=count,
        trace_id=view("trace_id", np.uint8).reshape(count, 16),
        span_id=view("span_id", np.uint8).reshape(count, 8),
        time_s=end.astype(np.float64) / 1e9,
        duration_s=duration_ns / 1e9,
        kind=view("kind", np.int32),
        status=view("status", np.int32),
        name=view("name", np.int32),
        names=scanned["names"],
        service=view("service", np.int32),
        services=scanned["services"],
        keys=scanned["keys"],
        strings=scanned["strings"],
        leaves=Leaves(
            record=view("leaf_record", np.int32),
            key=view("leaf_key", np.int32),
            kind=view("leaf_kind", np.int8),
            number=view("leaf_number", np.float64),
            integer=view("leaf_integer", np.int64),
            text=view("leaf_text", np.int32),
            from_array=view("leaf_from_array", np.bool_),
            entry=view("leaf_entry", np.int32),
        ),
        context_keys=context_keys,
        context=view("context", np.int32).reshape(count, len(context_keys)),
    )


REASON_TOO_MANY_VALUES = "too_many_values"


def too_many_values(limit: int, what: str) -> Permanent:
    """413 for a request that would cost more than `limits.max_request_values` (the client
    should send smaller batches); counted with reason `too_many_values`."""
    return Permanent(
        f"request carries {what} than limits.max_request_values ({limit}): send smaller batches",
        reason=REASON_TOO_MANY_VALUES,
        http_status=413,
    )


def _decode(
    payload: bytes, logs: bool, scanner: Scanner | None, context: tuple[str, ...], max_values: int
) -> Records:
    encoded = tuple(key.encode() for key in context)
    try:
        scanned = (scanner or SCANNER)(payload, logs, _PREFIX, encoded, max_values)
    except OverflowError:
        # The scan stopped at the limit: never more than `max_values` leaves were held.
        raise too_many_values(max_values, "more ml.* values") from None
    except ValueError as exc:
        raise Permanent(f"malformed protobuf: {exc}", reason="malformed") from None
    return _columns(scanned, context)


def decode_traces(
    payload: bytes,
    scanner: Scanner | None = None,
    context: tuple[str, ...] = (),
    max_values: int = 0,
) -> Records:
    """Decode an `ExportTraceServiceRequest`; raises `Permanent` if it is not one, or if it
    holds more than `max_values` ml.* values (0: no limit).

    `context`: the span or resource string attributes to keep per record (at most 16)."""
    return _decode(payload, False, scanner, context, max_values)


def decode_logs(
    payload: bytes,
    scanner: Scanner | None = None,
    context: tuple[str, ...] = (),
    max_values: int = 0,
) -> Records:
    """Decode an `ExportLogsServiceRequest`; raises `Permanent` if it is not one, or if it
    holds more than `max_values` ml.* values (0: no limit)."""
    return _decode(payload, True, scanner, context, max_values)


def truncate_labels(records: Records, max_length: int) -> dict[str, int]:
    """Cut every string that can become a label value (span and service names, attribute keys,
    string values: models, features, categories) to `max_length` characters, in place; how
    many were cut, by field. One C-speed length scan per list when nothing is too long."""
    cut: dict[str, int] = {}
    for name, values in (
        ("span_name", records.names),
        ("service", records.services),
        ("key", records.keys),
        ("value", records.strings),
    ):
        if not values or max(map(len, values)) <= max_length:
            continue
        long = [i for i, value in enumerate(values) if len(value) > max_length]
        if values is records.strings:
            ids = _prediction_id_strings(records)  # join keys, never labels: kept whole
            long = [i for i in long if i not in ids]
            if not long:
                continue
        for i in long:
            values[i] = values[i][:max_length]
        cut[name] = len(long)
    return cut


def _prediction_id_strings(records: Records) -> set[int]:
    """Codes of the strings only `ml.prediction.id` values use (a string shared with a label
    value, or a context attribute, is still cut)."""
    if semconv.PREDICTION_ID not in records.keys:
        return set()
    code = records.keys.index(semconv.PREDICTION_ID)
    leaves = records.leaves
    text = leaves.text
    is_id = leaves.key == code
    ids = set(np.unique(text[is_id & (text >= 0)]).tolist())
    labels = set(np.unique(text[~is_id & (text >= 0)]).tolist())
    labels.update(np.unique(records.context[records.context >= 0]).tolist())
    return ids - labels
