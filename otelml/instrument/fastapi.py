"""FastAPI: traces (opentelemetry-instrumentation-fastapi) plus `ml.*` attributes, one call.

    app = FastAPI()
    ...routes...
    otelml.instrument.fastapi.instrument(app, model="churn", version="3")

Features come from the request's pydantic body model and predictions from the response
model, read from the objects the handler receives and returns — the handler is not touched
and no body is parsed twice. By default every field of the body model is a feature and every
field of the response model an output; mark fields to choose instead:

    class Applicant(BaseModel):
        age: Annotated[float, Feature()]
        plan: Annotated[str, Feature()]
        request_id: str                         # not a feature: unmarked in a marked model

    class Scored(BaseModel):
        churn: Annotated[float, Prediction()]   # output "churn"
        explanation: str

A `list[Row]` field makes a batch (one array element per row; scalar fields next to it apply
to every row); `list[float]` outputs give one prediction per row. `features=[...]` /
`predictions=[...]` name the fields without touching the models.

Recording never breaks a request: what cannot be read is counted in `stats()` by reason and
said once in the log.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import types
import typing
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace

from otelml import semconv
from otelml.instrument.attributes import rows_to_columns
from otelml.instrument.logs import warn_once
from otelml.instrument.recording import record
from otelml.instrument.setup import flush
from otelml.instrument.spans import LeanSpan

_log = logging.getLogger("otelml.instrument.fastapi")
_warn = warn_once(_log)
_stats: Counter[str] = Counter()


class Feature:
    """Marks a request field as a model feature: `Annotated[float, Feature()]`."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name


class Prediction:
    """Marks a response field as a model output: `Annotated[float, Prediction("churn")]`."""

    def __init__(self, output: str | None = None) -> None:
        self.output = output


def stats() -> dict[str, int]:
    """Inferences recorded and not recorded (by reason) since the process started."""
    return dict(_stats)


def instrument(
    app: Any,
    *,
    model: str,
    version: str | int | None = None,
    features: Sequence[str] | None = None,
    predictions: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    tracer_provider: Any = None,
    asgi_spans: bool = False,
    tracing: Literal["lean", "fastapi", "opentelemetry"] = "lean",
) -> Any:
    """Trace `app` and record features/predictions of its model routes; returns `app`.

    `paths` limits recording to those route paths (default: every route whose body is a
    pydantic model). Routes added after this call are picked up at their first request.

    Server spans: an app already traced by opentelemetry-instrumentation-fastapi (by hand or
    by `opentelemetry-instrument`) keeps that. Otherwise `tracing="lean"` (the default) adds
    otelml's own middleware (`otelml.instrument.asgi`): one SERVER span per request with the
    instrumentation's HTTP attributes, at a fraction of its cost — and turns off, for this
    app, the request tracing that FastAPI versions with built-in telemetry start by
    themselves once a tracer provider exists (a second SERVER span and a span per
    operation); `tracing="fastapi"` keeps FastAPI's own spans instead (features then land on
    its current span); `tracing="opentelemetry"` uses opentelemetry-instrumentation-fastapi
    (its metrics, custom header attributes …), where `asgi_spans=False` leaves out its
    "http send"/"http receive" child spans.
    """
    options = _Options(model, None if version is None else str(version), features, predictions)
    wrapper = _RouteWrapper(app, options, set(paths) if paths is not None else None)
    wrapper.wrap_new_routes()
    if getattr(app, "_is_instrumented_by_opentelemetry", False) or tracing == "fastapi":
        app.add_middleware(_LateRoutes, wrapper=wrapper)  # traced already (or by FastAPI)
    elif tracing == "lean" and not asgi_spans:
        _add_server_spans(app, tracer_provider, wrapper)  # late routes: in the same layer
    else:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        kwargs: dict[str, Any] = {"tracer_provider": tracer_provider}
        if (
            not asgi_spans
            and "exclude_spans" in inspect.signature(FastAPIInstrumentor.instrument_app).parameters
        ):
            kwargs["exclude_spans"] = ["receive", "send"]
        FastAPIInstrumentor.instrument_app(app, **kwargs)
        app.add_middleware(_LateRoutes, wrapper=wrapper)
    _flush_on_shutdown(app)
    return app


def _add_server_spans(app: Any, tracer_provider: Any, wrapper: _RouteWrapper) -> None:
    """The lean middleware outside every other (as the OpenTelemetry instrumentation places
    its own), so the span sees the 500 that Starlette's error middleware answers; it also
    wraps routes added after `instrument()` before they first run."""
    if getattr(app, "_otelml_server_spans", False):
        app.add_middleware(_LateRoutes, wrapper=wrapper)  # instrumented twice: its own layer
        return
    from otelml.instrument.asgi import ServerSpanMiddleware

    build = app.build_middleware_stack

    def build_with_spans() -> Any:
        return ServerSpanMiddleware(build(), tracer_provider, wrapper.wrap_if_new)

    app.build_middleware_stack = build_with_spans
    app.middleware_stack = None  # rebuilt at the next request
    app._otelml_server_spans = True
    native = getattr(app, "_telemetry", None)  # FastAPI's built-in telemetry settings
    if isinstance(native, dict) and "tracing" in native:
        native["tracing"] = False  # one SERVER span per request: ours (its metrics stay)


def _flush_on_shutdown(app: Any) -> None:
    """Flush spans and logs when the app stops: servers such as uvicorn re-raise SIGTERM after
    a graceful shutdown, so the SDK's atexit flush would never run."""
    lifespan = app.router.lifespan_context
    if getattr(lifespan, "_otelml", False):
        return

    @contextlib.asynccontextmanager
    async def flushing(app_: Any) -> AsyncIterator[Any]:
        async with lifespan(app_) as state:
            yield state
        flush()

    flushing._otelml = True  # type: ignore[attr-defined]
    app.router.lifespan_context = flushing


@dataclass(frozen=True)
class _Options:
    model: str
    version: str | None
    features: Sequence[str] | None
    predictions: Sequence[str] | None


class _RouteWrapper:
    def __init__(self, app: Any, options: _Options, paths: set[str] | None) -> None:
        self.app = app
        self.options = options
        self.paths = paths
        self.seen = 0

    def wrap_new_routes(self) -> None:
        from fastapi.routing import APIRoute

        routes = self.app.router.routes
        for route in routes[self.seen :]:
            call = route.dependant.call if isinstance(route, APIRoute) else None
            if call is None or getattr(call, "_otelml", False):
                continue
            if self.paths is not None and route.path not in self.paths:
                continue
            plan = _plan(route, self.options)
            if plan is None:
                continue
            route.dependant.call = _wrap(call, plan, self.options)
        self.seen = len(routes)

    def wrap_if_new(self) -> None:
        """Wrap routes declared since the last look (one length check per request)."""
        if len(self.app.router.routes) != self.seen:
            self.wrap_new_routes()


class _LateRoutes:
    """ASGI middleware: wraps routes declared after `instrument()` before they first run."""

    def __init__(self, app: Any, wrapper: _RouteWrapper) -> None:
        self.app = app
        self.wrapper = wrapper

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.wrapper.wrap_if_new()
        await self.app(scope, receive, send)


# --- what to read from a route ------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    body_param: str
    features: dict[str, str]  # field → feature name (top level)
    rows_field: str | None  # a list[Model] field: one row per element
    row_features: dict[str, str]  # field of the row model → feature name
    outputs: dict[str, str] | None  # response field → output (None: all fields)

    @functools.cached_property
    def one_row(self) -> bool:
        """Whether a request is one row and the response model's fields its outputs."""
        return self.rows_field is None and self.outputs is not None

    @functools.cached_property
    def feature_keys(self) -> tuple[tuple[str, str], ...]:
        """(field, attribute key) of the top-level features."""
        return tuple((f, semconv.FEATURE_PREFIX + name) for f, name in self.features.items())

    @functools.cached_property
    def feature_fields(self) -> tuple[str, ...]:
        return tuple(field for field, _ in self.feature_keys)

    @functools.cached_property
    def feature_attribute_keys(self) -> tuple[str, ...]:
        return tuple(key for _, key in self.feature_keys)

    @functools.cached_property
    def output_fields(self) -> tuple[str, ...]:
        return tuple(field for field, _ in self.output_keys)

    @functools.cached_property
    def output_attribute_keys(self) -> tuple[str, ...]:
        return tuple(key for _, key in self.output_keys)

    def head(self, options: _Options) -> dict[str, Any]:
        """The model's name and version attributes (made once per route)."""
        key = (options.model, options.version)
        head = self._heads.get(key)
        if head is None:
            head = {semconv.MODEL_NAME: options.model}
            if options.version is not None:
                head[semconv.MODEL_VERSION] = options.version
            self._heads[key] = head
        return head

    @functools.cached_property
    def _heads(self) -> dict[tuple[str, str | None], dict[str, Any]]:
        return {}

    def row_keys(self, options: _Options) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """(every attribute key of a one-row inference, the model's name/version values)."""
        head = self.head(options)
        keys = self._row_keys.get(id(head))
        if keys is None:
            keys = self._row_keys[id(head)] = (
                (*head, *self.feature_attribute_keys, *self.output_attribute_keys),
                tuple(head.values()),
            )
        return keys

    @functools.cached_property
    def _row_keys(self) -> dict[int, tuple[tuple[str, ...], tuple[Any, ...]]]:
        return {}  # by id() of a head, which `_heads` keeps

    @functools.cached_property
    def output_keys(self) -> tuple[tuple[str, str], ...]:
        """(field, attribute key) of the outputs."""
        return tuple(
            (
                field,
                semconv.PREDICTION
                if output == semconv.DEFAULT_OUTPUT
                else semconv.PREDICTION_PREFIX + output,
            )
            for field, output in (self.outputs or {}).items()
        )


def _plan(route: Any, options: _Options) -> _Plan | None:
    from pydantic import BaseModel

    hints = _hints(route.dependant.call)
    body = [
        (name, hint)
        for name, hint in hints.items()
        if name != "return" and _is_model(_strip(hint), BaseModel)
    ]
    if len(body) != 1:
        return None  # no (or several) pydantic bodies: not a model route
    name, hint = body[0]
    request_model = _strip(hint)
    chosen = options.features
    features = _fields(request_model, Feature, chosen)
    rows_field, row_features = None, {}
    for field, info in request_model.model_fields.items():
        row_model = _list_item_model(info.annotation, BaseModel)
        if row_model is not None:
            rows_field = field
            row_features = _fields(row_model, Feature, chosen)
            features.pop(field, None)
            break
    response_model = getattr(route, "response_model", None) or _strip(hints.get("return"))
    outputs = None
    if _is_model(response_model, BaseModel):
        outputs = _fields(response_model, Prediction, options.predictions)
    return _Plan(name, features, rows_field, row_features, outputs)


def _fields(model: Any, marker: type, chosen: Sequence[str] | None) -> dict[str, str]:
    """Fields of a pydantic model to read: named ones, else marked ones, else all."""
    fields = model.model_fields
    if chosen is not None:
        return {f: f for f in chosen if f in fields}
    marked = {}
    for field, info in fields.items():
        for meta in info.metadata:
            if isinstance(meta, marker):
                label = getattr(meta, "name", None) or getattr(meta, "output", None)
                marked[field] = label or field
    return marked or {f: f for f in fields}


def _wrap(call: Callable[..., Any], plan: _Plan, options: _Options) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(call):

        @functools.wraps(call)
        async def async_endpoint(**values: Any) -> Any:
            result = await call(**values)
            _record(plan, options, values.get(plan.body_param), result)
            return result

        endpoint: Callable[..., Any] = async_endpoint
    else:

        @functools.wraps(call)
        def sync_endpoint(**values: Any) -> Any:
            result = call(**values)
            _record(plan, options, values.get(plan.body_param), result)
            return result

        endpoint = sync_endpoint
    endpoint._otelml = True  # type: ignore[attr-defined]
    return endpoint


def _record(plan: _Plan, options: _Options, body: Any, result: Any) -> None:
    span = trace.get_current_span()
    if type(span) is LeanSpan and _record_lean_row(plan, options, body, result, span):
        _stats["recorded"] += 1
        return
    if not span.is_recording() and span.get_span_context().is_valid:
        _stats["not_sampled"] += 1  # record() would write nothing: do not read the models
        return
    try:
        if _record_row(plan, options, body, result, span):
            _stats["recorded"] += 1
            return
        features = _features(plan, body)
        prediction = _prediction(plan, result)
        record(features, prediction, model=options.model, version=options.version)
        _stats["recorded"] += 1
    except Exception as error:  # never break the request
        reason = type(error).__name__
        _stats[f"failed:{reason}"] += 1
        _warn(reason, f"otelml could not record an inference ({reason}: {error}); counted")


_PLAIN = frozenset({bool, int, float, str})
_PLAIN_OR_NONE = _PLAIN | {type(None)}


#: What a pydantic (v2) model class has: a plain class attribute (`model_fields` is a
#: property of the class, ~0.4 µs a look).
_PYDANTIC_FIELDS = "__pydantic_fields__"


def _record_lean_row(
    plan: _Plan, options: _Options, body: Any, result: Any, span: LeanSpan
) -> bool:
    """`_record_row` for the server's lean span in fewer steps: one row whose every value is
    plain (no None), stored in one `LeanSpan.add_row`; False leaves the request to the general
    path (which writes the same where both apply)."""
    if not plan.one_row or not hasattr(type(result), _PYDANTIC_FIELDS):
        return False
    given = getattr(body, "__dict__", None)
    answered = getattr(result, "__dict__", None)
    if type(given) is not dict or type(answered) is not dict:
        return False
    keys, head = plan.row_keys(options)
    return span.add_row(keys, head, given, plan.feature_fields, answered, plan.output_fields)


def _record_row(plan: _Plan, options: _Options, body: Any, result: Any, span: Any) -> bool:
    """The usual request in one pass: one row of plain values in, a response model of plain
    values out, a recording span with room. Writes what `record()` would write (a None is a
    missing value: no attribute) and returns True; False leaves the request to `record()`.
    Values are read from the models' `__dict__` (where pydantic keeps field values) and
    checked in C, not per value in Python."""
    if plan.rows_field is not None or body is None or plan.outputs is None:
        return False
    given = getattr(body, "__dict__", None)
    answered = getattr(result, "__dict__", None)
    if type(given) is not dict or type(answered) is not dict:
        return False
    if not hasattr(type(result), _PYDANTIC_FIELDS) or not span.is_recording():
        return False
    attributes = plan.head(options).copy()
    attributes.update(
        zip(plan.feature_attribute_keys, map(given.get, plan.feature_fields), strict=True)
    )
    attributes.update(
        zip(plan.output_attribute_keys, map(answered.get, plan.output_fields), strict=True)
    )
    if not _PLAIN.issuperset(map(type, attributes.values())):
        if not _PLAIN_OR_NONE.issuperset(map(type, attributes.values())):
            return False
        attributes = {k: v for k, v in attributes.items() if v is not None}  # missing
    if len(attributes) > _room(span):
        return False  # record() moves them onto a log record
    span.set_attributes(attributes)
    return True


def _room(span: Any) -> int:
    limit = getattr(getattr(span, "_limits", None), "max_span_attributes", None)
    if not isinstance(limit, int) or limit < 0:
        return -1  # unknown: let record() decide
    own = getattr(span, "_attributes", None)  # the SDK's container (no read-only view made)
    return limit - len(own if own is not None else getattr(span, "attributes", None) or {})


def _features(plan: _Plan, body: Any) -> Any:
    if body is None:
        return None
    top = {name: getattr(body, field, None) for field, name in plan.features.items()}
    if plan.rows_field is None:
        return top
    rows = getattr(body, plan.rows_field, None) or []
    columns: dict[str, Any] = {
        name: [getattr(row, field, None) for row in rows]
        for field, name in plan.row_features.items()
    }
    columns.update(top)  # scalars next to the rows apply to every row
    return columns


def _prediction(plan: _Plan, result: Any) -> Any:
    if result is None:
        return None
    if plan.outputs is not None and hasattr(type(result), "model_fields"):
        values = {output: getattr(result, field, None) for field, output in plan.outputs.items()}
    elif hasattr(result, "model_dump"):
        values = result.model_dump()
    elif isinstance(result, dict):
        values = dict(result)
    elif isinstance(result, (bool, int, float, str, list, tuple)) or _is_array(result):
        return result  # a bare value or list: the single output
    else:
        _stats["unreadable_response"] += 1  # e.g. a Response object: already serialised
        return None
    out = {}
    for output, value in values.items():
        if isinstance(value, list) and value and hasattr(value[0], "model_dump"):
            out.update(rows_to_columns([v.model_dump() for v in value]))  # rows of outputs
        elif value is not None:
            out[output] = value
    return out or None


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy"


# --- typing helpers -----------------------------------------------------------------------


def _hints(call: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(call, include_extras=True)
    except Exception:
        return {}


def _strip(hint: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` → X."""
    while True:
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            hint = typing.get_args(hint)[0]
            continue
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            hint = args[0]
            continue
        return hint


def _is_model(hint: Any, base: type) -> bool:
    return isinstance(hint, type) and issubclass(hint, base)


def _list_item_model(hint: Any, base: type) -> Any:
    hint = _strip(hint)
    if typing.get_origin(hint) in (list, tuple, Sequence):
        args = typing.get_args(hint)
        if args and _is_model(_strip(args[0]), base):
            return _strip(args[0])
    return None
