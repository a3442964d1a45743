"""The SDK's OTLP span exporters (gRPC and HTTP), sending bytes from `encoder.encode_spans`.

Everything else — endpoints, headers, TLS, compression, timeouts, retries, the OTEL_*
variables, the SDK's own exporter metrics — stays the SDK's: these subclasses replace only
the step that turns spans into request bytes.

- gRPC: the exporter's stub is rebuilt on its channel with a serializer that passes the bytes
  through. SDKs that keep no channel of their own (1.20) keep their stub and their encoder.
- HTTP: the SDK's exporter calls its module's `encode_spans(spans).SerializeToString()` (or
  `SerializePartialToString()`), with no hook for bytes encoded elsewhere, and its export path
  (retries, size limit, metrics) differs between SDK versions; so that module's `encode_spans`
  is wrapped once to pass through an `Encoded` batch unchanged (anything else still goes to
  the SDK's function).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelml.instrument.encoder import encode_spans

_log = logging.getLogger("otelml.instrument.exporter")
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Encoded(list[ReadableSpan]):
    """A batch with its request bytes: quacks like the SDK's protobuf request where its HTTP
    exporter serialises one, and is still the list of spans for whoever counts them."""

    def __init__(self, spans: Sequence[ReadableSpan], payload: bytes) -> None:
        super().__init__(spans)
        self.payload = payload

    def SerializeToString(self) -> bytes:  # protobuf's name
        return self.payload

    def SerializePartialToString(self) -> bytes:
        return self.payload


def _passthrough(payload: bytes) -> bytes:
    return payload


class _BytesTraceStub:
    """TraceService's stub whose requests are already serialised."""

    def __init__(self, channel: Any) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        self.Export = channel.unary_unary(
            _EXPORT_METHOD,
            request_serializer=_passthrough,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


def grpc_span_exporter(**kwargs: Any) -> SpanExporter:
    """The SDK's OTLP/gRPC span exporter, encoding natively where the SDK lets it."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    class GrpcSpanExporter(OTLPSpanExporter):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.native = getattr(self, "_channel", None) is not None and hasattr(self, "_stub")
            if self.native:
                # Reconnects (newer SDKs rebuild the stub on UNAVAILABLE) use this stub too.
                self._stub = _BytesTraceStub
                self._client = _BytesTraceStub(self._channel)  # type: ignore[assignment]

        @property
        def accepts_encoded_spans(self) -> bool:
            """Whether `encoder.encode_span` bytes may be exported (they need the bytes stub)."""
            return bool(self.native)

        def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
            if self.native:
                return encode_spans(data)
            return super()._translate_data(data)

    return GrpcSpanExporter(**kwargs)


def http_span_exporter(**kwargs: Any) -> SpanExporter:
    """The SDK's OTLP/HTTP span exporter, sending natively encoded bytes."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    _wrap_http_encoder(trace_exporter)

    class HttpSpanExporter(trace_exporter.OTLPSpanExporter):
        accepts_encoded_spans = True  # `encoder.encode_span` bytes are sent as they are

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            try:
                batch: Sequence[ReadableSpan] = Encoded(spans, encode_spans(spans))
            except Exception:  # the SDK's encoder fails too: let the SDK report it its way
                batch = spans
            return super().export(batch)

    return HttpSpanExporter(**kwargs)


def _wrap_http_encoder(module: Any) -> None:
    sdk_encode = module.encode_spans
    if getattr(sdk_encode, "_otelml_passthrough", False):
        return

    def encode_or_pass(spans: Any) -> Any:
        return spans if isinstance(spans, Encoded) else sdk_encode(spans)

    encode_or_pass._otelml_passthrough = True  # type: ignore[attr-defined]
    module.encode_spans = encode_or_pass


def span_exporter(protocol: str, **kwargs: Any) -> SpanExporter:
    """An OTLP span exporter for `protocol` (`grpc` or `http/protobuf`)."""
    if protocol == "grpc":
        return grpc_span_exporter(**kwargs)
    if protocol in ("http/protobuf", "http"):
        return http_span_exporter(**kwargs)
    raise ValueError(f"OTLP protocol {protocol!r} is not supported (grpc or http/protobuf)")
