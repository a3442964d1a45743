"""Spans → OTLP request bytes: the native encoder where it writes exactly the installed SDK's
bytes, the SDK's own encoder everywhere else.

The SDK's encoder builds a protobuf object per attribute and array element (~50–90 µs per
span with 20 features, in the export thread, holding the GIL the request path needs); the C
encoder (`_otlpencode.c`) writes the wire format straight from the spans. What the SDK writes
changed over its versions (span flags, schema URLs, scope attributes, nulls), so the first use
encodes probe spans both ways and keeps the native encoder only in the mode whose bytes are
the SDK's. A batch the native encoder cannot reproduce (a value type it does not know, an
integer beyond int64, a null where the installed SDK cannot send one …) goes to the SDK's
encoder, counted in `stats()`. `OTELML_NATIVE_ENCODER=0` turns the native encoder off.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as _sdk_encode_spans,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

try:
    from otelml.instrument import _otlpencode  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the SDK's encoder does the work
    _otlpencode = None

_log = logging.getLogger("otelml.instrument.encoder")
_stats: Counter[str] = Counter()


def compiled() -> bool:
    """Whether the C encoder was built (without a compiler, the SDK's encoder does all)."""
    return _otlpencode is not None


def read_fields_of(span_type: type) -> None:
    """Let the native encoder read `span_type`'s spans (an SDK `Span` subclass that keeps the
    SDK's private fields in its instances' `__dict__`, as `spans.LeanSpan` does) and the
    API's `SpanContext` field by field instead of through a dozen Python properties per span
    (~8 µs of a model service's request path). The SpanContext is read as the tuple it is
    only where its items are checked to be its fields."""
    global _lean_type
    register = getattr(_otlpencode, "register", None)
    if register is not None:
        register(span_type, SpanContext if context_is_its_tuple() else None)
        _lean_type = span_type


@functools.cache
def context_is_its_tuple() -> bool:
    """Whether a SpanContext is the tuple (trace_id, span_id, is_remote, trace_flags,
    trace_state, is_valid), as the API has always built it."""
    state = TraceState([("k", "v")])
    context = SpanContext(3 << 64 | 5, 7, True, TraceFlags(1), state)
    return (
        isinstance(context, tuple)
        and len(context) == 6
        and tuple(context) == (3 << 64 | 5, 7, True, TraceFlags(1), state, True)
        and context[4] is context.trace_state
    )


# Mode bits of _otlpencode.c: which fields the installed SDK writes.
FLAGS, SCHEMA, SCOPE_ATTRIBUTES, NULLS, BYTES = 1, 2, 4, 8, 16


def stats() -> dict[str, int]:
    """Batches encoded natively (`native`) and by the SDK (`sdk:<reason>`) in this process."""
    return dict(_stats)


def sdk_encode(spans: Sequence[ReadableSpan]) -> bytes:
    """The SDK's own bytes for `spans`."""
    return bytes(_sdk_encode_spans(spans).SerializeToString())


def native_encode(spans: Sequence[ReadableSpan], mode: int) -> bytes:
    """The native encoder's bytes in `mode`; raises `Unsupported` (a ValueError) where it
    cannot write what the SDK would."""
    if _otlpencode is None:
        raise RuntimeError("otelml was built without its C extension")
    return bytes(_otlpencode.encode(_groups(spans), mode))


def encode_spans(spans: Sequence[ReadableSpan | bytes]) -> bytes:
    """An ExportTraceServiceRequest of `spans`, byte for byte what the installed SDK writes.

    Items may also be `encode_span`'s bytes (spans encoded when they ended): they are
    grouped by their resource and scope as the spans would be. Spans that could not be
    encoded then are encoded here and appended (a request's resource_spans may repeat)."""
    if spans and any(type(item) is bytes for item in spans):
        ready = [item for item in spans if type(item) is bytes]
        rest = [item for item in spans if type(item) is not bytes]
        mode = native_mode()
        assert mode is not None  # encode_span gave these bytes: the mode is known
        payload = bytes(_otlpencode.encode(_encoded_groups(ready), mode))
        _stats["native"] += 1
        return payload + encode_spans(rest) if rest else payload
    mode = native_mode()
    if mode is not None:
        try:
            payload = native_encode(spans, mode)  # type: ignore[arg-type]
        except _otlpencode.Unsupported as unsupported:
            _stats[f"sdk:{unsupported}"] += 1
        else:
            _stats["native"] += 1
            return payload
    else:
        _stats["sdk:no_native_mode"] += 1
    return sdk_encode(spans)  # type: ignore[arg-type]


#: (resource, scope) of the spans `encode_span` encoded, by the key their bytes carry.
_scopes: list[tuple[Any, Any]] = []
_scope_keys: dict[tuple[int, int], int] = {}
_scopes_lock = threading.Lock()
_last_scope: tuple[Any, Any, int] = (None, None, -1)
#: The span type whose fields are read directly (`read_fields_of`).
_lean_type: type | None = None
#: Distinct (resource, scope) pairs kept; spans of further ones are left to `encode_spans`.
MAX_SCOPES = 1024


def encode_span(span: ReadableSpan) -> bytes | None:
    """A finished span as bytes for a later `encode_spans` (natively: an untracked object, so
    a queue of them gives the garbage collector nothing to scan); None where the native
    encoder cannot write the SDK's bytes for it (the span itself must be queued then)."""
    global _last_scope
    mode = native_mode()
    if mode is None:
        return None
    if type(span) is _lean_type:  # its properties' fields, without the calls
        resource, scope = span._resource, span._instrumentation_scope or None
    else:
        resource, scope = span.resource, span.instrumentation_scope or None
    last = _last_scope
    if last[0] is resource and last[1] is scope:
        key = last[2]
    else:
        with _scopes_lock:
            found = _scope_keys.get((id(resource), id(scope)))
            if found is None:
                if len(_scopes) >= MAX_SCOPES:
                    return None
                found = len(_scopes)
                _scopes.append((resource, scope))  # kept: its id() stays this pair's
                _scope_keys[(id(resource), id(scope))] = found
        key = found
        _last_scope = (resource, scope, key)
    try:
        return bytes(_otlpencode.encode_span(span, mode, key))
    except _otlpencode.Unsupported as unsupported:
        _stats[f"sdk:{unsupported}"] += 1
        return None


def _encoded_groups(items: Sequence[bytes]) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """`_groups` for encoded spans: by the resource and scope their key names."""
    keys = [int.from_bytes(item[:4], "little") for item in items]
    pairs = _scopes
    return _grouped(
        (pairs[key][0], pairs[key][1], item) for key, item in zip(keys, items, strict=True)
    )


def _groups(spans: Sequence[ReadableSpan]) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """Spans by resource, then by instrumentation scope, in first-seen order."""
    return _grouped((span.resource, span.instrumentation_scope or None, span) for span in spans)


def _grouped(
    items: Iterable[tuple[Any, Any, Any]],
) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """Items by resource, then by instrumentation scope, in first-seen order — the SDK's
    grouping (resources and scopes compared by equality, not identity). Consecutive items of
    one resource and scope (the usual batch) skip the dictionaries: a Resource hashes by
    serialising its attributes."""
    groups: dict[Any, dict[Any, list[Any]]] = {}
    last_resource: Any = object()
    last_scope: Any = object()
    current: list[Any] = []
    for resource, scope, item in items:
        if resource is not last_resource or scope is not last_scope:
            current = groups.setdefault(resource, {}).setdefault(scope, [])
            last_resource, last_scope = resource, scope
        current.append(item)
    return [(resource, list(scopes.items())) for resource, scopes in groups.items()]


@functools.cache
def native_mode() -> int | None:
    """The mode in which the native encoder writes the installed SDK's bytes (found once), or
    None: then every batch goes to the SDK's encoder."""
    if _otlpencode is None or os.environ.get("OTELML_NATIVE_ENCODER", "1").strip() == "0":
        return None
    try:
        return calibrate()
    except Exception as error:  # a probe we cannot even build: never fail the app for it
        _log.debug("native OTLP encoder off: %s", error)
        return None


def calibrate() -> int | None:
    """Compare both encoders on probe spans; the first mode that matches them all."""
    base = _probe_spans(nulls=False, raw_bytes=False)
    mode = next(
        (
            candidate
            for candidate in range((FLAGS | SCHEMA | SCOPE_ATTRIBUTES) + 1)
            if _matches(base, candidate)
        ),
        None,
    )
    if mode is None:
        return None
    with _quiet_sdk_encoder():  # SDKs that cannot send a null log an exception for it
        if _matches(_probe_spans(nulls=True, raw_bytes=False), mode | NULLS):
            mode |= NULLS
        if _matches(_probe_spans(nulls=False, raw_bytes=True), mode | BYTES):
            mode |= BYTES
    return mode


def _matches(spans: Sequence[ReadableSpan], mode: int) -> bool:
    try:
        expected = sdk_encode(spans)
    except Exception:
        return False
    try:
        return native_encode(spans, mode) == expected
    except Exception:  # e.g. a field this SDK's objects do not have: not this mode
        return False


@contextmanager
def _quiet_sdk_encoder() -> Iterator[None]:
    logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


def _probe_spans(nulls: bool, raw_bytes: bool) -> list[ReadableSpan]:
    """Spans with every field the SDK encodes: all attribute types and arrays, events, links,
    a remote parent, trace state, an error status, resource and scope schema URLs."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import (
        Link,
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
        TraceState,
        set_span_in_context,
    )

    finished: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    resource = Resource({"service.name": "probe", "probe.n": 3}, "https://probe/resource")
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    options: dict[str, Any] = {"schema_url": "https://probe/scope"}
    if "attributes" in inspect.signature(provider.get_tracer).parameters:
        options["attributes"] = {"scope.flag": True}
    tracer = provider.get_tracer("probe", "1.2", **options)
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "a1"), ("other", "b2")]),
    )
    attributes: dict[str, Any] = {
        "s": "é ✓",
        "empty": "",
        "t": True,
        "f": False,
        "i": -7,
        "big": 2**62,
        "zero": 0,
        "d": 0.25,
        "nan": float("nan"),
        "ss": ["a", "", "c"],
        "bs": [True, False],
        "is": [1, -2, 3],
        "ds": [1.5, -0.0],
        "none": [],
    }
    if nulls:
        attributes["nullable"] = ["a", None]
    if raw_bytes:
        attributes["raw"] = b"ok\x00"  # valid UTF-8: SDKs that decode bytes do so quietly
    link = Link(SpanContext(0x1, 0x2, is_remote=False), {"link.k": "v", "link.n": 2})
    with tracer.start_as_current_span(
        "probe-server",
        context=set_span_in_context(NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=[link],
    ) as span:
        span.add_event("event", {"e.k": 1.5, "e.l": ["x"]}, timestamp=1_700_000_000_000_000_001)
        span.set_status(Status(StatusCode.ERROR, "probe failed"))
        with tracer.start_as_current_span("probe-child", kind=SpanKind.CLIENT):
            pass
    tracer.start_span("probe-root", kind=SpanKind.CONSUMER).end()
    provider.shutdown()
    return finished
