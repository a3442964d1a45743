"""Lean spans: the OpenTelemetry SDK's spans without most of their per-span machinery.

An SDK span costs ~25 µs before it is exported: a `BoundedAttributes` (a lock and a type
check per value, an ordered copy), two `BoundedList`s, the processors' `on_start`, and a
`ReadableSpan` copy at the end. For a server span that carries 20–40 plain attributes that
is a large share of what a 0.1 ms model costs. A `LeanSpan` is an SDK `Span` (a subclass:
`isinstance` checks, `record_exception`, `set_status`, `add_event`, `update_name` and
context-manager use are the installed SDK's own code) that keeps its attributes in a plain
dict while they are plain — str keys, `bool`/`int`/`float`/`str` values within the length
limit, room under the count limit — and turns into exactly an SDK span's attributes (a
`BoundedAttributes`, the SDK's own cleaning, eviction and dropped counts) at the first value
that is not. Ids, sampling, resource, instrumentation scope and limits are the provider's;
the processors receive the ended span itself, a `ReadableSpan` like any SDK span.

    tracer = LeanTracer.for_provider(provider, "my.library", "1.0")  # None: use the SDK's
    span = tracer.start("GET /items", SpanKind.SERVER, parent_context, attributes)
    ...
    span.end()

Safe only where nothing can tell the difference, so `for_provider` returns None unless the
provider is the SDK's `TracerProvider` with its synchronous multi-processor, and `start`
falls back to the SDK tracer's own span while any processor is not one of the SDK's batch or
simple processors (theirs do nothing on start; another may read or change a starting span),
or while the SDK's own span metrics are on. A sampled-out span is the SDK's
`NonRecordingSpan`, as the SDK makes it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelml.instrument import encoder

try:
    from otelml.instrument import _leanattrs  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the same checks in Python
    _leanattrs = None
from otelml.instrument.batching import EncodingSpanProcessor

_log = logging.getLogger("otelml.instrument.spans")

#: Processors whose `on_start` (and `_on_ending`) do nothing: they only see finished spans.
SAFE_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor, EncodingSpanProcessor)
_PLAIN = frozenset({str, bool, int, float})
_STR = frozenset({str})
#: W3C trace context level 2's random-trace-id flag, on SDKs that set it (newer than 1.40).
_RANDOM_FLAG = (
    getattr(TraceFlags, "RANDOM_TRACE_ID", 0) if hasattr(IdGenerator, "is_trace_id_random") else 0
)
_NO_EVENTS: tuple[Any, ...] = ()
_SEQUENCES = frozenset({list, tuple})
#: `_plain`'s answer for a value only the SDK's own cleaning may store.
_NOT_PLAIN: Any = object()


def _plain(value: Any, length: int | None) -> Any:
    """`value` as the SDK stores it, where every SDK version stores it alike without a word:
    a bool/int/float/str (a str within `length`) as is, a list or tuple of one such type as
    a tuple. Anything else (mixed or None elements, bytes, long strings …) is `_NOT_PLAIN`."""
    kind = type(value)
    if kind in _PLAIN:
        if kind is str and length is not None and len(value) > length:
            return _NOT_PLAIN
        return value
    if kind not in _SEQUENCES:
        return _NOT_PLAIN
    kinds = set(map(type, value))
    if len(kinds) > 1 or not kinds <= _PLAIN:
        return _NOT_PLAIN
    if str in kinds and length is not None and any(len(v) > length for v in value):
        return _NOT_PLAIN
    return tuple(value)


_UNSET = Status(StatusCode.UNSET)
#: The trace flags a span can get, made once (TraceFlags are immutable ints).
_TRACE_FLAGS = {
    flags: TraceFlags(flags)
    for flags in (0, TraceFlags.SAMPLED, _RANDOM_FLAG, TraceFlags.SAMPLED | _RANDOM_FLAG)
}


class LeanSpan(sdk_trace.Span):
    """An SDK span whose attributes stay a plain dict while that changes nothing; built by
    `LeanTracer.start` only."""

    # A plain dict while every value is plain, else the SDK's containers.
    _attributes: Any
    _events: Any = _NO_EVENTS  # the SDK's BoundedList from the first event on
    _links: Any = _NO_EVENTS
    # Fields every span starts with (read from the class until one is set on the span).
    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True
    _record_end_metrics = None  # SDK span metrics are off (`LeanTracer.safe`)
    _end_time: int | None = None
    _status = _UNSET  # shared, as the SDK's ReadableSpan default is

    @classmethod
    def started(
        cls,
        shared: dict[str, Any],
        name: str,
        context: trace.SpanContext,
        parent: trace.SpanContext | None,
        kind: SpanKind,
        start_time: int,
        attributes: dict[str, Any],
    ) -> LeanSpan:
        """A started span with every field the SDK's inherited methods read (the SDK's
        __init__ is what we skip): the class's defaults, its tracer's from `shared`
        (`LeanTracer.shared_fields`) and its own; `attributes` (plain, see `_all_plain`)
        become its attribute dict."""
        span: LeanSpan = object.__new__(cls)
        fields = span.__dict__
        fields.update(shared)
        fields["_name"] = name
        fields["_context"] = context
        fields["_parent"] = parent
        fields["_kind"] = kind
        fields["_lock"] = threading.Lock()
        fields["_start_time"] = start_time
        fields["_attributes"] = attributes  # a plain dict until a value is not plain
        return span

    # --- attributes: the plain dict while it is exact, the SDK's BoundedAttributes after --

    def _fits(self, key: Any, adding: int) -> bool:
        """Whether storing a plain value (see `_plain`) under `key` changes nothing the SDK
        would have done: a non-empty str key, room under the count limit."""
        if type(key) is not str or not key:
            return False
        limit = self._limits.max_span_attributes
        return limit is None or len(self._attributes) + adding <= limit

    def _bounded(self) -> Any:
        """Make the attributes the SDK's own container (same items, same order), for good."""
        attributes = self._attributes
        if type(attributes) is dict:
            limits = self._limits
            bounded = BoundedAttributes(
                limits.max_span_attributes,
                None,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
            for key, value in attributes.items():  # already clean: stored unchanged
                bounded[key] = value
            self._attributes = attributes = bounded
        return attributes

    def set_attribute(self, key: str, value: Any) -> None:
        with self._lock:
            if self._end_time is not None:
                _log.warning("Setting attribute on ended span.")
                return
            attributes = self._attributes
            if type(attributes) is dict:
                plain = _plain(value, self._limits.max_span_attribute_length)
                if plain is not _NOT_PLAIN and self._fits(key, 0 if key in attributes else 1):
                    attributes.pop(key, None)  # a rewritten key moves to the end, as in the SDK
                    attributes[key] = plain
                    return
        if self._upgrade():
            sdk_trace.Span.set_attribute(self, key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            if self._end_time is not None:
                _log.warning("Setting attribute on ended span.")
                return
            own = self._attributes
            plain = _all_plain(self._limits, own, attributes) if type(own) is dict else None
            if plain is not None:
                _merge(own, plain)
                return
        if self._upgrade():
            sdk_trace.Span.set_attributes(self, attributes)

    def add_row(
        self,
        keys: tuple[str, ...],
        head: tuple[Any, ...],
        given: dict[str, Any],
        fields: tuple[str, ...],
        answered: dict[str, Any],
        outputs: tuple[str, ...],
    ) -> bool:
        """Store one recorded inference — `head`, then `given`'s `fields`, then `answered`'s
        `outputs` (models' `__dict__`s) under `keys` — if it fits as it is: every value there
        and plain, no key set already, within the limits. False (nothing stored): use
        `set_attributes`."""
        with self._lock:
            own = self._attributes
            if self._end_time is not None or type(own) is not dict:
                return False
            limits = self._limits
            limit, length = limits.max_span_attributes, limits.max_span_attribute_length
            if _leanattrs is not None:
                return bool(
                    _leanattrs.add_row(
                        own,
                        keys,
                        head,
                        given,
                        fields,
                        answered,
                        outputs,
                        -1 if limit is None else limit,
                        -1 if length is None else length,
                    )
                )
            try:
                values = (
                    *head,
                    *map(given.__getitem__, fields),
                    *map(answered.__getitem__, outputs),
                )
            except KeyError:
                return False
            if not _PLAIN.issuperset(map(type, values)) or (
                length is not None and any(type(v) is str and len(v) > length for v in values)
            ):
                return False
            if limit is not None and len(own) + len(keys) > limit:
                return False
            if not own.keys().isdisjoint(keys):
                return False
            own.update(zip(keys, values, strict=True))
            return True

    def _upgrade(self) -> bool:
        """Switch to the SDK's container (False: the span has ended meanwhile)."""
        with self._lock:
            if self._end_time is not None:
                _log.warning("Setting attribute on ended span.")
                return False
            self._bounded()
        return True

    @property
    def dropped_attributes(self) -> int:
        return int(getattr(self._attributes, "dropped", 0))

    @property
    def dropped_events(self) -> int:
        return int(getattr(self._events, "dropped", 0))

    @property
    def dropped_links(self) -> int:
        return int(getattr(self._links, "dropped", 0))

    # --- events and links: the SDK's own containers, made at the first one ---------------

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        with self._lock:
            if self._events is _NO_EVENTS:
                self._events = BoundedList(self._limits.max_events)
        sdk_trace.Span.add_event(self, name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: Any = None) -> None:
        add_link = getattr(sdk_trace.Span, "add_link", None)
        if add_link is None:  # an SDK without links after start (1.20)
            return
        with self._lock:
            if self._links is _NO_EVENTS:
                self._links = BoundedList(self._limits.max_links)
        add_link(self, context, attributes)

    # --- end: the span to the processors --------------------------------------------------

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
        self._ended()

    def finish(
        self, name: str | None, attributes: Mapping[str, Any], end_time: int | None = None
    ) -> None:
        """`update_name(name)` (unless None), `set_attributes(attributes)` and
        `end(end_time)` in one step under one lock: what a server span does last."""
        done = False
        with self._lock:
            own = self._attributes
            plain = _all_plain(self._limits, own, attributes) if type(own) is dict else None
            if plain is not None and self._end_time is None:
                done = True
                if name is not None:
                    self._name = name
                _merge(own, plain)
                self._end_time = end_time if end_time is not None else time_ns()
        if done:
            self._ended()
            return
        if name is not None:  # the general path, with its warnings and the SDK's container
            self.update_name(name)
        self.set_attributes(attributes)
        self.end(end_time)

    def _ended(self) -> None:
        if type(self._attributes) is not dict:
            self._attributes._immutable = True  # as the SDK's end does
        if self._record_end_metrics is not None:
            self._record_end_metrics()
        # No `_on_ending`: the processors a lean span starts under do nothing there. They get
        # the span itself, not a ReadableSpan copy as the SDK makes: a lean span is one, and
        # refuses every change once ended.
        processor = self._span_processor
        processors = getattr(processor, "_span_processors", None)
        if type(processors) is tuple and len(processors) == 1:
            processors[0].on_end(self)  # what the multi-processor's on_end does, one call less
        else:
            processor.on_end(self)

    def update_name(self, name: str) -> None:
        with self._lock:
            if self._end_time is None:
                self._name = name
                return
        _log.warning("Tried calling %s on an ended span.", "update_name")


def _merge(own: dict[str, Any], plain: Mapping[str, Any]) -> None:
    """`plain` into `own` in the SDK's order: it deletes a rewritten key and appends it."""
    if not own.keys().isdisjoint(plain):
        for key in own.keys() & plain.keys():
            del own[key]
    own.update(plain)


def _all_plain(
    limits: Any, own: dict[str, Any], attributes: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The items as the SDK would store them (sequences as tuples), or None where one is
    not plain or they do not all fit: non-empty str keys, plain values within the length
    limit, room for all. Scalars only (the usual case) are checked over the items in C."""
    length = limits.max_span_attribute_length
    plain: Mapping[str, Any] = attributes
    scalars_in_c = (
        _leanattrs is not None
        and type(attributes) is dict
        and _leanattrs.plain_scalars(attributes, -1 if length is None else length)
    )
    if not scalars_in_c:  # sequences, other mappings, or what C refused: judged in Python
        if not _STR.issuperset(map(type, attributes)) or "" in attributes:
            return None
        if not _PLAIN.issuperset(map(type, attributes.values())):
            items = {key: _plain(value, length) for key, value in attributes.items()}
            if _NOT_PLAIN in items.values():
                return None
            plain = items
        elif length is not None and any(
            len(value) > length for value in attributes.values() if type(value) is str
        ):
            return None
    limit = limits.max_span_attributes
    if limit is None or len(own) + len(plain) <= limit:
        return plain
    return plain if len(own.keys() | plain.keys()) <= limit else None


encoder.read_fields_of(LeanSpan)


class LeanTracer:
    """Starts lean spans with an SDK tracer's sampler, ids, resource, scope and limits."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self._checked: Any = None
        self._safe = False
        self.shared_fields: dict[str, Any] = {
            "_resource": tracer.resource,
            "_instrumentation_info": tracer.instrumentation_info,
            "_instrumentation_scope": tracer._instrumentation_scope,
            "_limits": tracer._span_limits,
            "_sampler": tracer.sampler,
            "_span_processor": tracer.span_processor,
        }
        self._decisions = _static_decisions(tracer.sampler)
        # The SDK's RandomIdGenerator is `random.getrandbits` until the id is valid.
        self._random_ids = type(tracer.id_generator) is RandomIdGenerator

    @classmethod
    def for_provider(
        cls,
        provider: Any,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
    ) -> LeanTracer | None:
        """A lean tracer for `provider`'s tracer `name`, or None where lean spans would not be
        the SDK's (not the SDK's provider, disabled, other processors)."""
        if not isinstance(provider, sdk_trace.TracerProvider):
            return None
        tracer = provider.get_tracer(name, version, schema_url)
        if type(tracer) is not sdk_trace.Tracer:
            return None  # OTEL_SDK_DISABLED (a no-op tracer) or a provider of another kind
        lean = cls(tracer)
        return lean if lean.safe() else None

    def safe(self) -> bool:
        """Whether a lean span is indistinguishable from the SDK's now: only the SDK's batch
        and simple processors (checked again whenever a processor is added), SDK span
        metrics off, the tracer enabled."""
        tracer = self.tracer
        processor = tracer.span_processor
        processors = getattr(processor, "_span_processors", None)
        if processors is not self._checked:
            self._checked = processors
            self._safe = (
                type(processor) is sdk_trace.SynchronousMultiSpanProcessor
                and isinstance(processors, tuple)
                and all(type(p) in SAFE_PROCESSORS for p in processors)
            )
        if not self._safe:
            return False
        metrics = getattr(tracer, "_tracer_metrics", None)
        if metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics":
            return False  # OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED: let the SDK count
        enabled = getattr(tracer, "_is_enabled", None)
        return enabled is None or bool(enabled())

    def start(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        parent_context: Context | None = None,
        attributes: Mapping[str, Any] | None = None,
        start_time: int | None = None,
        links: Sequence[trace.Link] | None = None,
        owned: bool = False,
    ) -> trace.Span:
        """A started span, as `Tracer.start_span(name, parent_context, kind, attributes,
        links, start_time)` would return it: lean where safe, the SDK's otherwise.
        `owned`: `attributes` is a dict the caller gives away (the span may keep it)."""
        tracer = self.tracer
        if links or not self.safe():
            return tracer.start_span(  # type: ignore[no-any-return]
                name, parent_context, kind, attributes, links or (), start_time
            )
        parent: SpanContext | None = trace.get_current_span(parent_context).get_span_context()
        if parent is not None and not isinstance(parent, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        random_ids = self._random_ids
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = (
                _random_id(128, trace.INVALID_TRACE_ID)
                if random_ids
                else tracer.id_generator.generate_trace_id()
            )
        else:
            trace_id = parent.trace_id
        decisions = self._decisions
        if decisions is not None:  # the SDK's own samplers, decided as they decide
            if parent is None:
                decision = decisions[0]
            else:
                sampled = parent.trace_flags.sampled
                decision = decisions[(1 if sampled else 2) + (0 if parent.is_remote else 2)]
            trace_state = None if parent is None else parent.trace_state
            extra = None if decision is Decision.DROP else attributes
        else:
            result = tracer.sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, ()
            )
            decision, trace_state, extra = result.decision, result.trace_state, result.attributes
        flags = TraceFlags.SAMPLED if decision is Decision.RECORD_AND_SAMPLE else TraceFlags.DEFAULT
        if _RANDOM_FLAG:
            random_trace_id = (
                (random_ids or tracer.id_generator.is_trace_id_random())
                if parent is None
                else parent.trace_flags.random_trace_id
            )
            if random_trace_id:
                flags |= _RANDOM_FLAG
        span_id = (
            _random_id(64, trace.INVALID_SPAN_ID)
            if random_ids
            else tracer.id_generator.generate_span_id()
        )
        context = _span_context(trace_id, span_id, _TRACE_FLAGS[flags], trace_state)
        if decision is Decision.DROP:
            return trace.NonRecordingSpan(context)
        # The caller's dict becomes the span's where it gave it away (`owned`), the sampler
        # kept it and it is plain as it is; else it is stored as `set_attributes` stores it.
        adopt = (
            owned
            and extra is attributes
            and type(attributes) is dict
            and _all_plain(self.shared_fields["_limits"], {}, attributes) is attributes
        )
        span = LeanSpan.started(
            self.shared_fields,
            name,
            context,
            parent,
            kind,
            start_time if start_time is not None else time_ns(),
            attributes if adopt else {},  # type: ignore[arg-type]
        )
        if extra and not adopt:
            span.set_attributes(extra)
        return span


def _static_decisions(sampler: Any) -> tuple[Decision, ...] | None:
    """The decisions (root, remote parent sampled, remote not sampled, local sampled, local
    not sampled) of the SDK's `always_on`/`always_off`/`parentbased_always_*` samplers —
    each call of theirs makes two `SamplingResult`s and looks up the parent twice — or None
    for any other sampler (it is called)."""
    if type(sampler) is StaticSampler:
        return (sampler._decision,) * 5
    if type(sampler) is not ParentBased:
        return None
    delegates: tuple[Any, ...] = (
        sampler._root,
        sampler._remote_parent_sampled,
        sampler._remote_parent_not_sampled,
        sampler._local_parent_sampled,
        sampler._local_parent_not_sampled,
    )
    if not all(type(delegate) is StaticSampler for delegate in delegates):
        return None
    return tuple(delegate._decision for delegate in delegates)


def _random_id(bits: int, invalid: int) -> int:
    """An id as the SDK's `RandomIdGenerator` makes it (the same draws of `random`)."""
    value = random.getrandbits(bits)
    while value == invalid:
        value = random.getrandbits(bits)
    return value


def _span_context(trace_id: int, span_id: int, flags: TraceFlags, state: Any) -> SpanContext:
    """A local span's `SpanContext(trace_id, span_id, False, flags, state)`, built as its
    `__new__` builds it (valid ids, by construction here) where that is checked to be so."""
    if not _CONTEXT_IS_TUPLE:
        return SpanContext(trace_id, span_id, False, flags, state)
    if state is None:
        state = trace.DEFAULT_TRACE_STATE
    return tuple.__new__(SpanContext, (trace_id, span_id, False, flags, state, True))


_CONTEXT_IS_TUPLE = encoder.context_is_its_tuple()
