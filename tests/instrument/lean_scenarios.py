"""The same span operations through the SDK's tracer and through `LeanTracer`, side by side.

Self-contained (OpenTelemetry and otelml only), so the SDK-floor environment runs it as a
script too: `python lean_scenarios.py` prints the comparison as JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from otelml.instrument import encoder
from otelml.instrument.spans import LeanSpan, LeanTracer

T0 = 1_700_000_000_000_000_000
REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(1),
    trace_state=TraceState([("vendor", "a1")]),
)
UNSAMPLED_REMOTE = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0))


class CountingIds(RandomIdGenerator):
    """Ids 1, 2, 3 … so two providers given the same operations give the same ids."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return 0xABC00000000000000000 + self.next


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def provider(sampler: Sampler | None = None, limits: SpanLimits | None = None) -> Any:
    made = TracerProvider(
        sampler=sampler,
        resource=Resource({"service.name": "lean", "n": 2}),
        id_generator=CountingIds(),
        span_limits=limits,
        shutdown_on_exit=False,
    )
    keep = Keep()
    made.add_span_processor(SimpleSpanProcessor(keep))
    made.keep = keep  # type: ignore[attr-defined]
    return made


Start = Callable[..., Any]


def starter(made: Any, lean: bool) -> Start:
    """start(name, kind, parent_context, attributes, start_time) on one of the two paths."""
    if lean:
        tracer = LeanTracer.for_provider(made, "scope.lean", "1.0")
        assert tracer is not None
        return tracer.start
    sdk = made.get_tracer("scope.lean", "1.0")

    def start(name: str, kind: SpanKind, parent: Any, attributes: Any, start_time: int) -> Any:
        return sdk.start_span(name, parent, kind, attributes, start_time=start_time)

    return start


def parent_of(span_context: SpanContext) -> Any:
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def operations(made: Any, start: Start) -> list[Any]:
    """A request's worth of span use: what the middleware, record() and user code do."""
    spans = []
    server = start("POST", SpanKind.SERVER, parent_of(REMOTE), {"http.method": "POST", "n": 3}, T0)
    spans.append(server)
    server.set_attribute("late", 1.5)
    server.set_attributes({"ml.feature.a": 0.25, "ml.feature.b": "x", "ml.model.name": "m"})
    server.set_attribute("n", 4)  # a rewritten key moves to the end
    rows = [0.5, 1.5]
    server.set_attributes({"rows": rows, "names": ("a", "b"), "flags": [True], "none": []})
    rows.append(9.0)  # the span keeps its own copy, as the SDK's does
    server.set_attribute("ints", [1, 2, 3])
    arrays = type(server._attributes).__name__ if isinstance(server, LeanSpan) else None
    server.set_attribute("list", [1, "mixed"])  # not plain: the SDK's container from here on
    server.set_attribute("after", True)
    token = otel_context.attach(trace.set_span_in_context(server))
    try:
        trace.get_current_span().set_attribute("user.key", "from the handler")
        child = made.get_tracer("user.code").start_span("child", start_time=T0 + 5)
        child.set_attribute("c", 1)
        child.end(T0 + 6)
    finally:
        otel_context.detach(token)
    server.add_event("event", {"e": 1}, timestamp=T0 + 7)
    server.record_exception(ValueError("bad row"), timestamp=T0 + 8)
    server.update_name("POST /predict")
    server.set_status(Status(StatusCode.ERROR, "failed"))
    server.end(T0 + 10)
    server.set_attribute("ignored", 1)  # after end: warned and ignored, as by the SDK

    root = start("root", SpanKind.INTERNAL, None, None, T0 + 20)
    root.set_attributes({"a": 1, "b": False, "s": "text"})
    root.end(T0 + 21)
    spans.append(root)

    unsampled_parent = start(
        "child of unsampled", SpanKind.CLIENT, parent_of(UNSAMPLED_REMOTE), None, T0
    )
    unsampled_parent.end(T0 + 1)
    spans.append(unsampled_parent)
    return [*spans, arrays]  # and whether arrays of one plain type kept the span plain


def server_request(made: Any, start: Start) -> list[Any]:
    """The server middleware's and the FastAPI recording's own steps (a lean span's `start`
    with attributes given away, `add_row`, `finish`; the SDK's span: the calls they stand
    for), with children under local parents, sampled and not."""
    lean = isinstance(getattr(start, "__self__", None), LeanTracer)
    attributes = {"http.method": "POST", "http.target": "/p", "net.peer.port": 5}
    if lean:
        server = start("POST", SpanKind.SERVER, parent_of(REMOTE), attributes, T0, owned=True)
    else:
        server = start("POST", SpanKind.SERVER, parent_of(REMOTE), attributes, T0)
    keys = ("ml.model.name", "ml.feature.a", "ml.feature.b", "ml.prediction")
    given, answered = {"a": 0.5, "b": "x", "ignored": 1}, {"p": True}
    if isinstance(server, LeanSpan):
        stored = server.add_row(keys, ("m",), given, ("a", "b"), answered, ("p",))
        refused = server.add_row(keys, ("m",), given, ("a", "b"), answered, ("p",))  # set
    else:
        server.set_attributes(dict(zip(keys, ("m", 0.5, "x", True), strict=True)))
        stored, refused = True, False
    local = trace.set_span_in_context(server)
    child = start("child", SpanKind.INTERNAL, local, {"c": 1}, T0 + 1)
    child.end(T0 + 2)
    unsampled_local = SpanContext(0x99, 0x77, is_remote=False, trace_flags=TraceFlags(0))
    unsampled = trace.set_span_in_context(NonRecordingSpan(unsampled_local))
    dropped = start("child of an unsampled local", SpanKind.INTERNAL, unsampled, None, T0 + 3)
    dropped.end(T0 + 4)
    late = {"http.route": "/p", "http.status_code": 200}
    if isinstance(server, LeanSpan):
        server.finish("POST /p", late, T0 + 9)
    else:
        server.update_name("POST /p")
        server.set_attributes(late)
        server.end(T0 + 9)
    return [server, child, dropped, stored, refused]


def limited(made: Any, start: Start) -> list[Any]:
    """Past the count and length limits: what is kept, evicted, cut and counted."""
    span = start("limits", SpanKind.SERVER, None, {"first": "abcdefgh", "second": 2}, T0)
    span.set_attributes({f"k{i}": i for i in range(3)})
    span.set_attribute("long", "0123456789")
    span.set_attribute("long_items", ["ok", "0123456789"])  # cut by the SDK, element-wise
    span.set_attribute("k1", 10)
    span.set_attributes({"x": "yz", "": 1, "bad": object()})
    for i in range(5):
        span.add_event(f"e{i}", {"v": "long value", "n": i}, timestamp=T0 + i)
    span.end(T0 + 9)
    fits = start("fits", SpanKind.SERVER, None, {"a": "abcd"}, T0)
    fits.set_attributes({"b": 1, "c": 2.0, "d": True})  # exactly at the limit: still plain
    plain = type(fits._attributes).__name__ if isinstance(fits, LeanSpan) else None
    fits.end(T0 + 1)
    return [span, fits, plain]


def run_pair(scenario: Callable[[Any, Start], list[Any]], **options: Any) -> dict[str, Any]:
    """The scenario on both paths: the exported bytes (SDK encoder), native bytes, flags."""
    out: dict[str, Any] = {}
    for lean in (False, True):
        made = provider(**options)
        started = scenario(made, starter(made, lean))
        finished = made.keep.spans
        payload = encoder.sdk_encode(finished)
        native = encoder.native_mode()
        out["lean" if lean else "sdk"] = {
            "bytes": payload.hex(),
            "decoded": str(ExportTraceServiceRequest.FromString(payload)),
            "native_same": native is None or encoder.native_encode(finished, native) == payload,
            "recording": [getattr(s, "is_recording", lambda: None)() for s in started],
            "types": [type(s).__name__ for s in started],
            "flags": [
                int(s.get_span_context().trace_flags)
                for s in started
                if hasattr(s, "get_span_context")
            ],
            "dropped": [s.dropped_attributes for s in finished],
            # the attribute containers the scenario looked at (lean spans only)
            "containers": [s for s in started if isinstance(s, str)],
            # what the scenario's calls answered (add_row: stored or not)
            "answers": [s for s in started if isinstance(s, bool)],
        }
    return out


def compare() -> dict[str, Any]:
    logging.disable(logging.CRITICAL)
    return {
        "default": run_pair(operations),
        "ratio_0": run_pair(operations, sampler=ParentBased(TraceIdRatioBased(0.0))),
        "ratio_1": run_pair(operations, sampler=ParentBased(TraceIdRatioBased(1.0))),
        "server": run_pair(server_request),
        "server_always_on": run_pair(server_request, sampler=ALWAYS_ON),
        "server_always_off": run_pair(server_request, sampler=ALWAYS_OFF),
        "server_parent_off": run_pair(server_request, sampler=ParentBased(ALWAYS_OFF)),
        "limits": run_pair(
            limited,
            limits=SpanLimits(
                max_span_attributes=4,
                max_span_attribute_length=5,
                max_events=3,
                max_event_attributes=1,
                max_attribute_length=4,
            ),
        ),
    }


if __name__ == "__main__":
    print(json.dumps(compare()))
