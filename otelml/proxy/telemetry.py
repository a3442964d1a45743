"""Tracer setup: the official OpenTelemetry SDK, OTLP exporter chosen by the standard OTEL_*
variables, a batch processor so the request path never waits for the gateway.

Honoured: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT,
OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (grpc by default, or http/protobuf), headers, timeouts
and certificates as the exporters read them, OTEL_BSP_* (queue size, batch size, delay),
OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_TRACES_EXPORTER=none (no export), OTEL_PROPAGATORS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelml.instrument.batching import EncodingSpanProcessor
from otelml.instrument.exporter import span_exporter

DEFAULT_SERVICE_NAME = "otelml-proxy"


class CountingExporter(SpanExporter):
    """Counts what the real exporter delivered or gave up on; never raises into the SDK."""

    def __init__(self, inner: SpanExporter, on_result: Callable[[bool, int], None]) -> None:
        self.inner = inner
        self.on_result = on_result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter bug must not kill the export thread
            result = SpanExportResult.FAILURE
        self.on_result(result == SpanExportResult.SUCCESS, len(spans))
        return result

    @property
    def accepts_encoded_spans(self) -> bool:
        """What the real exporter says: whether it sends spans encoded at their end."""
        return bool(getattr(self.inner, "accepts_encoded_spans", False))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _protocol() -> str:
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()


def otlp_exporter(endpoint: str | None = None) -> SpanExporter | None:
    """The OTLP span exporter the environment asks for; `endpoint` (`--gateway`) overrides
    OTEL_EXPORTER_OTLP_*ENDPOINT. None when OTEL_TRACES_EXPORTER=none."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    protocol = _protocol()
    if protocol == "grpc":
        if endpoint is None:
            return span_exporter(protocol)
        return span_exporter(
            protocol, endpoint=endpoint, insecure=not endpoint.startswith("https://")
        )
    if protocol in ("http/protobuf", "http"):
        if endpoint is None:
            return span_exporter(protocol)
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return span_exporter(protocol, endpoint=endpoint.rstrip("/") + "/v1/traces")
    raise ValueError(f"OTLP protocol {protocol!r} is not supported (grpc or http/protobuf)")


def _resource() -> Resource:
    named = os.environ.get("OTEL_SERVICE_NAME") or any(
        part.strip().startswith(f"{SERVICE_NAME}=")
        for part in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    )
    # Resource.create reads the environment; only fill the name when it says nothing.
    return Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})


def tracer_provider(
    exporter: SpanExporter | None, on_export: Callable[[bool, int], None] | None = None
) -> TracerProvider:
    """A provider of its own (not the global one), exporting through a batch processor."""
    provider = TracerProvider(resource=_resource())
    if exporter is not None:
        if on_export is not None:
            exporter = CountingExporter(exporter, on_export)
        # Spans wait for export as their encoded bytes (see otelml.instrument.batching).
        provider.add_span_processor(EncodingSpanProcessor(exporter))
    return provider


def max_span_attributes() -> int:
    """The SDK's span attribute limit (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, default 128)."""
    limit = SpanLimits().max_span_attributes
    return 1 << 30 if limit is None else int(limit)
