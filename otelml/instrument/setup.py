"""`configure()`: traces and logs over OTLP with the official SDK, in one call.

Arguments fall back to the standard environment variables, then to defaults, as every
OpenTelemetry SDK does: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]ENDPOINT`, `..._PROTOCOL`, `..._HEADERS`, `..._TIMEOUT`,
`..._INSECURE`, `OTEL_BSP_*`, `OTEL_BLRP_*`, the span limits. The default protocol is gRPC
(what `opentelemetry-instrument` uses); `http/protobuf` is chosen by argument or variable.

An app already set up — by `opentelemetry-instrument` or its own code — keeps its providers:
`configure` then only adds what is missing (log correlation, a log handler when a logger
provider exists) and never installs a second exporter. Exports run in the SDK's batch
processors' threads, so the request path never waits on the network, and an unreachable
gateway costs dropped telemetry, never an exception in the app.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from otelml.instrument.batching import EncodingSpanProcessor
from otelml.instrument.exporter import span_exporter
from otelml.instrument.logs import LOG_FORMAT, OtlpLogHandler, install_correlation

Protocol = Literal["grpc", "http/protobuf"]
_log = logging.getLogger("otelml.instrument")
#: Attributes a log record of ours may carry (SDK default: 128) unless OTEL_* says otherwise.
WIDE_RECORD_ATTRIBUTES = 4096


@dataclass
class Telemetry:
    """What `configure` set up; `shutdown()` flushes and stops what it created itself."""

    tracer_provider: Any
    logger_provider: Any | None
    created: list[Any] = field(default_factory=list)
    handler: logging.Handler | None = None

    def force_flush(self, timeout_millis: int = 10_000) -> None:
        for provider in (self.tracer_provider, self.logger_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush(timeout_millis)

    def shutdown(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler = None
        for provider in self.created:
            provider.shutdown()
        self.created.clear()


def configure(
    service_name: str | None = None,
    endpoint: str | None = None,
    *,
    protocol: Protocol | None = None,
    headers: dict[str, str] | None = None,
    resource_attributes: dict[str, str] | None = None,
    logs: bool = True,
    log_level: int | None = None,
    log_format: str | None = LOG_FORMAT,
) -> Telemetry:
    """Send traces and logs to the otelml gateway (or any OTLP endpoint).

    `endpoint` is the gateway's base address (`http://gateway:4317` for gRPC,
    `http://gateway:4318` for HTTP); the signal paths are added for HTTP. `logs=False` keeps
    Python logging out of OTLP (correlation ids are still stamped). `log_format` is applied to
    the root logger when it has no handler yet (None: leave logging's format alone).
    """
    attributes: dict[str, str] = dict(resource_attributes or {})
    if service_name:
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)  # merges OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    protocol = protocol or _protocol_from_env()
    telemetry = Telemetry(trace.get_tracer_provider(), None)

    if not isinstance(telemetry.tracer_provider, TracerProvider):
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(
            EncodingSpanProcessor(_exporter("traces", protocol, endpoint, headers))
        )
        trace.set_tracer_provider(provider)
        telemetry.tracer_provider = provider
        telemetry.created.append(provider)
    else:
        resource = telemetry.tracer_provider.resource

    install_correlation(str(resource.attributes.get(SERVICE_NAME, "")))
    if log_format is not None and not logging.getLogger().handlers:
        logging.basicConfig(format=log_format)
    if log_level is not None:
        logging.getLogger().setLevel(log_level)

    if logs:
        logger_provider = get_logger_provider()
        if not _is_sdk_logger_provider(logger_provider):
            logger_provider = _logger_provider(resource, protocol, endpoint, headers)
            set_logger_provider(logger_provider)
            telemetry.created.append(logger_provider)
        telemetry.logger_provider = logger_provider
        if not any(_exports_logs(h) for h in logging.getLogger().handlers):
            telemetry.handler = OtlpLogHandler(logger_provider)
            logging.getLogger().addHandler(telemetry.handler)
    else:
        telemetry.logger_provider = get_logger_provider()
    return telemetry


def _protocol_from_env() -> Protocol:
    value = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if value not in ("grpc", "http/protobuf"):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={value!r}: otelml supports 'grpc' and 'http/protobuf'"
        )
    return value  # type: ignore[return-value]


def _http_url(endpoint: str, path: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith(path) else base + path


#: The official OTLP log exporters by protocol: imported only when used.
_EXPORTERS = {
    ("grpc", "logs"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("http/protobuf", "logs"): (
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "OTLPLogExporter",
    ),
}


def _exporter(
    signal: Literal["traces", "logs"],
    protocol: Protocol,
    endpoint: str | None,
    headers: dict[str, str] | None,
) -> Any:
    """An OTLP exporter; without `endpoint` it reads the OTEL_* variables itself."""
    if protocol == "http/protobuf" and endpoint:  # the HTTP exporters take the signal's URL
        endpoint = _http_url(endpoint, f"/v1/{signal}")
    if signal == "traces":  # the SDK's exporters with the native span encoder
        return span_exporter(protocol, endpoint=endpoint, headers=headers)
    module, name = _EXPORTERS[(protocol, signal)]
    exporter = getattr(importlib.import_module(module), name)
    return exporter(endpoint=endpoint, headers=headers)


def _logger_provider(
    resource: Resource, protocol: Protocol, endpoint: str | None, headers: dict[str, str] | None
) -> Any:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    options: dict[str, Any] = {}
    if "log_record_limits" in inspect.signature(LoggerProvider).parameters and not (
        os.environ.get("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT")
        or os.environ.get("OTEL_ATTRIBUTE_COUNT_LIMIT")
    ):
        from opentelemetry.sdk._logs import LogRecordLimits

        # A wide feature set travels on one log record: do not cut it at the default 128.
        options["log_record_limits"] = LogRecordLimits(max_attributes=WIDE_RECORD_ATTRIBUTES)
    provider = LoggerProvider(resource=resource, **options)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(_exporter("logs", protocol, endpoint, headers))
    )
    return provider


def _is_sdk_logger_provider(provider: Any) -> bool:
    from opentelemetry.sdk._logs import LoggerProvider

    return isinstance(provider, LoggerProvider)


def _exports_logs(handler: logging.Handler) -> bool:
    """A handler that already sends records over OTLP (ours, or the SDK's/instrumentation's)."""
    return isinstance(handler, OtlpLogHandler) or type(handler).__name__ == "LoggingHandler"


def flush(timeout_millis: int = 5_000, also: Iterable[Any] = ()) -> None:
    """Export what the global providers (and `also`) hold now, within one time budget for all:
    app shutdown hooks call this, and shutdown waits for it."""
    deadline = time.monotonic() + timeout_millis / 1000
    providers = [trace.get_tracer_provider(), get_logger_provider(), *also]
    for provider in dict.fromkeys(p for p in providers if p is not None):
        force_flush = getattr(provider, "force_flush", None)
        left = int((deadline - time.monotonic()) * 1000)
        if force_flush is not None and left > 0:
            force_flush(left)
