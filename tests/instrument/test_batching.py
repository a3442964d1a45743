"""The encoding batch processor: what it exports is the SDK encoder's bytes of the same spans,
its queue holds untracked bytes, and it is the SDK's processor wherever it cannot encode."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otelml.instrument import encoder
from otelml.instrument.batching import EncodingSpanProcessor
from otelml.instrument.spans import LeanSpan, LeanTracer

pytestmark = pytest.mark.skipif(encoder.native_mode() is None, reason="no native encoder")


class Payloads(SpanExporter):
    """An exporter like otelml's: takes encoded spans, keeps the request bytes it would send."""

    accepts_encoded_spans = True

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.items: list[Any] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.items.extend(spans)
        self.payloads.append(encoder.encode_spans(spans))
        return SpanExportResult.SUCCESS


def traffic(provider: TracerProvider, requests: int) -> None:
    lean = LeanTracer.for_provider(provider, "server", "1")
    assert lean is not None
    user = provider.get_tracer("user.code")
    for i in range(requests):
        span = lean.start("POST", SpanKind.SERVER, None, {"http.method": "POST", "i": i})
        assert isinstance(span, LeanSpan)
        span.set_attributes({"ml.feature.a": i * 0.5, "ml.model.name": "m"})
        child = user.start_span("child")
        child.set_attribute("list", [1, 2])
        child.end()
        span.end()


def test_exported_bytes_are_the_sdk_encoders_of_the_same_spans() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    sink = Payloads()
    processor = EncodingSpanProcessor(sink, schedule_delay_millis=60_000)
    assert processor.encodes
    provider.add_span_processor(processor)
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    traffic(provider, 40)
    processor.force_flush()
    spans = seen.get_finished_spans()
    assert len(spans) == 80 and all(type(item) is bytes for item in sink.items)
    (payload,) = sink.payloads
    assert payload == encoder.sdk_encode(spans)  # grouped by resource and scope, in order
    decoded = ExportTraceServiceRequest.FromString(payload)
    scopes = [s.scope.name for r in decoded.resource_spans for s in r.scope_spans]
    assert scopes == ["user.code", "server"]  # the child ends first
    provider.shutdown()


def test_the_queue_holds_bytes_the_collector_does_not_track() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    processor = EncodingSpanProcessor(Payloads(), schedule_delay_millis=60_000)
    provider.add_span_processor(processor)
    traffic(provider, 10)
    queued = list(processor._batch_processor._queue)
    assert len(queued) == 20
    assert all(type(item) is bytes and not gc.is_tracked(item) for item in queued)
    provider.shutdown()


def test_mixed_batches_keep_every_span() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    traffic(provider, 3)
    spans: list[ReadableSpan] = list(seen.get_finished_spans())
    encoded = [encoder.encode_span(span) for span in spans[:4]]
    assert all(item is not None for item in encoded)
    payload = encoder.encode_spans([*encoded, *spans[4:]])  # type: ignore[list-item]
    decoded = ExportTraceServiceRequest.FromString(payload)
    names = [
        (s.name, s.span_id)
        for r in decoded.resource_spans
        for scope in r.scope_spans
        for s in scope.spans
    ]
    expected = [(s.name, s.context.span_id.to_bytes(8, "big")) for s in spans]
    assert sorted(names) == sorted(expected)
    provider.shutdown()


def test_with_an_exporter_that_takes_spans_it_is_the_sdks_processor() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    processor = EncodingSpanProcessor(exporter, schedule_delay_millis=60_000)
    assert not processor.encodes
    provider.add_span_processor(processor)
    traffic(provider, 2)
    processor.force_flush()
    assert [type(s).__name__ for s in exporter.get_finished_spans()].count("LeanSpan") == 2
    assert len(exporter.get_finished_spans()) == 4
    provider.shutdown()
