"""`record()` and `record_ground_truth()`: the `ml.*` attributes of an inference, on its span.

The current span (the request's server span under FastAPI/BentoML instrumentation) receives
the attributes; with no span in context a short span of its own carries them, so scripts and
batch jobs need no tracing code. A sampled-out span is respected: nothing is written.

A span holds at most `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` (default 128) attributes and the SDK
silently drops the rest — fatal for a wide feature set. When the attributes would not fit,
the span keeps the model name and version and the whole set goes on one log record in the same
trace (the gateway reads log records the same way, and joins ground truth by the same ids);
this is said once per process.

Prediction ids: the gateway's default is `<trace_id>:<row>`; `record` returns the ids it
will use, so the caller can hand them to whoever learns the truth later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace

from otelml import semconv
from otelml.instrument.attributes import (
    AttributeValue,
    batch_rows,
    feature_columns,
    ml_attributes,
    prediction_columns,
)
from otelml.instrument.logs import emit, warn_once

_log = logging.getLogger("otelml.instrument")
_warn = warn_once(_log)
_TRACER_NAME = "otelml.instrument"
_DEFAULT_SPAN_ATTRIBUTES = 128


def record(
    features: Any = None,
    prediction: Any = None,
    *,
    model: str | None = None,
    version: str | int | None = None,
    prediction_id: str | Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
) -> list[str]:
    """Write one inference (a row or a batch) on the current span; returns its prediction ids.

    Raises TypeError/ValueError for arguments that cannot describe an inference (a programming
    error, caught in tests); export problems never raise.
    """
    features_ = feature_columns(features, feature_names) if features is not None else None
    predictions_ = prediction_columns(prediction) if prediction is not None else None
    rows = batch_rows(features_, predictions_)
    if prediction_id is not None and not isinstance(prediction_id, str):
        prediction_id = [str(i) for i in prediction_id]
        if rows is not None and len(prediction_id) != rows:
            raise ValueError(f"{len(prediction_id)} prediction ids for {rows} rows")
    attributes = ml_attributes(
        features_, predictions_, model, None if version is None else str(version), prediction_id
    )
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        tracer = trace.get_tracer(_TRACER_NAME)
        with tracer.start_as_current_span(f"{model or 'model'} inference") as own:
            return _write(own, attributes, rows, prediction_id)
    return _write(span, attributes, rows, prediction_id)


def record_ground_truth(
    prediction_id: str | Sequence[str],
    value: Any,
    *,
    output: str | None = None,
    model: str | None = None,
    version: str | int | None = None,
) -> None:
    """Send the true label/value of earlier predictions (one id and value, or sequences of both).

    Written like `record` (on the current span, else a span of its own); the gateway joins it
    with the prediction of the same id and updates the model's performance metrics.
    """
    key = semconv.GROUND_TRUTH if output is None else semconv.GROUND_TRUTH_PREFIX + output
    truth = prediction_columns({"truth": value}).values["truth"]
    ids: AttributeValue = (
        prediction_id if isinstance(prediction_id, str) else [str(i) for i in prediction_id]
    )
    if isinstance(ids, list) != isinstance(truth, list) or (
        isinstance(ids, list) and isinstance(truth, list) and len(ids) != len(truth)
    ):
        raise ValueError("prediction_id and value must both be scalars or equal-length sequences")
    attributes: dict[str, AttributeValue] = {semconv.PREDICTION_ID: ids, key: truth}
    if model is not None:
        attributes[semconv.MODEL_NAME] = model
    if version is not None:
        attributes[semconv.MODEL_VERSION] = str(version)
    span = trace.get_current_span()
    if span.get_span_context().is_valid:
        if span.is_recording():
            span.set_attributes(attributes)
        return
    with trace.get_tracer(_TRACER_NAME).start_as_current_span("ground truth") as own:
        own.set_attributes(attributes)


def _write(
    span: Any,
    attributes: dict[str, AttributeValue],
    rows: int | None,
    prediction_id: str | list[str] | None,
) -> list[str]:
    context = span.get_span_context()
    ids = _prediction_ids(context.trace_id, rows, prediction_id)
    if not span.is_recording():
        return ids
    room = _span_attribute_limit(span) - len(getattr(span, "attributes", None) or {})
    if len(attributes) <= room:
        span.set_attributes(attributes)
        return ids
    _warn(
        "wide",
        f"{len(attributes)} ml.* attributes do not fit the span's attribute limit "
        f"({_span_attribute_limit(span)}): writing them on a log record in the same trace "
        "(raise OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT to keep them on spans)",
    )
    for key in (semconv.MODEL_NAME, semconv.MODEL_VERSION):
        if key in attributes:
            span.set_attribute(key, attributes[key])
    from opentelemetry._logs import get_logger_provider

    logger = get_logger_provider().get_logger(_TRACER_NAME)
    limit = _log_record_attribute_limit(logger)
    if limit is not None and len(attributes) > limit:
        _warn(
            "wide-log",
            f"{len(attributes)} ml.* attributes exceed the log record attribute limit ({limit}) "
            "too: set OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT (or let otelml.instrument.configure "
            "set up logging)",
        )
    with trace.use_span(span, end_on_exit=False):
        emit(logger, "ml.inference", attributes)
    return ids


def _prediction_ids(
    trace_id: int, rows: int | None, prediction_id: str | list[str] | None
) -> list[str]:
    if isinstance(prediction_id, list):
        return prediction_id
    base = prediction_id if prediction_id is not None else format(trace_id, "032x")
    if prediction_id is not None and rows is None:
        return [base]
    return [f"{base}:{row}" for row in range(rows or 1)]


def _span_attribute_limit(span: Any) -> int:
    limits = getattr(span, "_limits", None)
    limit = getattr(limits, "max_span_attributes", None)
    if isinstance(limit, int) and limit >= 0:
        return limit
    value = os.environ.get("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT") or os.environ.get(
        "OTEL_ATTRIBUTE_COUNT_LIMIT"
    )
    return int(value) if value and value.isdigit() else _DEFAULT_SPAN_ATTRIBUTES


def _log_record_attribute_limit(logger: Any) -> int | None:
    """The SDK logger's attribute limit where it can be read (SDK ≥ 1.35), else None."""
    limits = getattr(logger, "_log_record_limits", None)
    for name in ("max_log_record_attributes", "max_attributes"):
        limit = getattr(limits, name, None)
        if isinstance(limit, int):
            return limit
    return None
