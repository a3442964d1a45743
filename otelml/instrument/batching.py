"""The SDK's batch span processor, queueing each finished span's encoded bytes.

Why: a span waiting in the batch queue (up to `OTEL_BSP_SCHEDULE_DELAY`, or until
`OTEL_BSP_MAX_EXPORT_BATCH_SIZE` more have ended) is several objects the cyclic garbage
collector tracks. At a few thousand spans per second they set off a young collection every
~55 requests (a bare service: every ~2,500); each promotes the objects of the requests in
flight, and those promotions start full collections of the whole heap (65–100 ms for a
model service's ~170k objects, ~6 µs per request). Encoded at its end (natively, ~2.5 µs:
the work the export thread did later), a span waits as one `bytes`, which the collector
does not track.

Everything else — `OTEL_BSP_*`, the queue and its limit, the worker thread, flush, shutdown
— is the SDK's `BatchSpanProcessor`. Used only with otelml's own exporters (they send the
bytes) and where the native encoder writes the installed SDK's bytes; otherwise, and on SDKs
whose batch processor keeps its queue differently, it is the SDK's processor unchanged.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otelml.instrument import encoder


class EncodingSpanProcessor(BatchSpanProcessor):
    """`BatchSpanProcessor(exporter, ...)` whose queue holds `encoder.encode_span` bytes."""

    def __init__(self, span_exporter: SpanExporter, **options: Any) -> None:
        super().__init__(span_exporter, **options)
        batch = getattr(self, "_batch_processor", None)  # the SDK's shared batcher (≥ 1.33)
        self._emit = (
            getattr(batch, "emit", None)
            if getattr(span_exporter, "accepts_encoded_spans", False)
            and encoder.native_mode() is not None
            else None
        )

    @property
    def encodes(self) -> bool:
        """Whether spans are queued encoded (else this is the SDK's processor)."""
        return self._emit is not None

    def on_end(self, span: ReadableSpan) -> None:
        emit = self._emit
        if emit is None or not (span.context and span.context.trace_flags.sampled):
            super().on_end(span)
            return
        try:
            encoded = encoder.encode_span(span)
        except Exception:  # a span the native encoder cannot read: the exporter encodes it
            encoded = None
        emit(span if encoded is None else encoded)
