"""Python `logging` correlated with traces, and OTLP log records on every SDK from 1.20 on.

Two things, both cheap enough for every log call:
- a record factory that stamps each `logging.LogRecord` with the current trace and span ids
  (`otelTraceID`, `otelSpanID`, `otelTraceSampled`: the names opentelemetry-instrumentation-
  logging uses, so formats written for it keep working), and `LOG_FORMAT`, which prints
  `trace_id=<32 hex> span_id=<16 hex>` for log shippers that only see text;
- `OtlpLogHandler`, which turns records into OTLP log records through the logs API, the
  trace context attached, so Loki keeps trace ids and Grafana links a line to its trace.

The logs API changed shape between SDK 1.20 (BentoML 1.4's floor: `Logger.emit(LogRecord)`
with explicit ids) and today's (`Logger.emit(body=..., context=...)`); `emit` hides that.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s trace_id=%(otelTraceID)s span_id=%(otelSpanID)s %(message)s"
)
_TRACE_FIELDS = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16

# Attributes every logging.LogRecord has: not exported as log attributes.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    *_TRACE_FIELDS,
}


def install_correlation(service_name: str = "") -> None:
    """Stamp every log record created from now on with the current trace context (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_otelml", False):
        return

    def correlated(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.otelTraceID = format(context.trace_id, "032x")
            record.otelSpanID = format(context.span_id, "016x")
            record.otelTraceSampled = context.trace_flags.sampled
        else:
            record.otelTraceID, record.otelSpanID, record.otelTraceSampled = (
                _NO_TRACE,
                _NO_SPAN,
                False,
            )
        record.otelServiceName = service_name
        return record

    correlated._otelml = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(correlated)


def severity(levelno: int) -> SeverityNumber:
    """Python levels onto OTel severities (DEBUG=5, INFO=9, WARNING=13, ERROR=17, FATAL=21)."""
    if levelno <= logging.NOTSET:
        return SeverityNumber.UNSPECIFIED
    for base, number in ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5)):
        if levelno >= base:
            return SeverityNumber(min(number + (levelno - base) // 3, number + 3))
    return SeverityNumber(max(1, levelno // 3 + 1))


def _keyword_emit() -> bool:
    from opentelemetry._logs import Logger

    return "body" in inspect.signature(Logger.emit).parameters


_KEYWORD_EMIT = _keyword_emit()


def emit(
    logger: Any,
    body: Any,
    attributes: Mapping[str, Any],
    severity_number: SeverityNumber = SeverityNumber.INFO,
    timestamp_ns: int | None = None,
) -> None:
    """One OTLP log record in the current trace context, on any supported SDK."""
    timestamp = timestamp_ns if timestamp_ns is not None else time.time_ns()
    level = severity_number.name.rstrip("234") if severity_number.value else None
    if _KEYWORD_EMIT:
        logger.emit(
            timestamp=timestamp,
            observed_timestamp=time.time_ns(),
            context=otel_context.get_current(),
            severity_number=severity_number,
            severity_text=level,
            body=body,
            attributes=dict(attributes),
        )
        return
    from opentelemetry.sdk._logs import (  # type: ignore[attr-defined]  # SDK 1.20 – 1.34
        LogLimits,
        LogRecord,
    )

    span = trace.get_current_span().get_span_context()
    resource = getattr(logger, "resource", None)
    if resource is None:
        return  # a no-op logger (no SDK configured): nothing would be exported
    logger.emit(
        LogRecord(
            timestamp=timestamp,
            observed_timestamp=time.time_ns(),
            trace_id=span.trace_id,
            span_id=span.span_id,
            trace_flags=span.trace_flags,
            severity_text=level,
            severity_number=severity_number,
            body=body,
            resource=resource,
            attributes=dict(attributes),
            # The record carries whole feature sets: do not cut them at the default 128.
            limits=LogLimits(max_attributes=max(128, len(attributes))),
        )
    )


class OtlpLogHandler(logging.Handler):
    """Sends Python log records as OTLP log records (body, severity, extras as attributes)."""

    def __init__(self, logger_provider: Any, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._logger = logger_provider.get_logger("otelml.instrument.logs")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            attributes = {
                k: v
                for k, v in vars(record).items()
                if k not in _RESERVED and isinstance(v, (str, bool, int, float, list, tuple))
            }
            attributes["code.function"] = record.funcName
            attributes["code.lineno"] = record.lineno
            attributes["code.filepath"] = record.pathname
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__name__
                attributes["exception.message"] = str(record.exc_info[1])
                attributes["exception.stacktrace"] = logging.Formatter().formatException(
                    record.exc_info
                )
            emit(
                self._logger,
                record.getMessage(),
                attributes,
                severity(record.levelno),
                int(record.created * 1e9),
            )
        except Exception:  # a log call must never raise into the app
            self.handleError(record)


def warn_once(logger: logging.Logger) -> Callable[[str, str], None]:
    """A warning per distinct key, once per process: "says so once", not once per request."""
    said: set[str] = set()

    def warn(key: str, message: str) -> None:
        if key not in said:
            said.add(key)
            logger.warning(message)

    return warn
