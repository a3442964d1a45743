"""BentoML 1.4: `ml.*` attributes of `@bentoml.api` methods, on BentoML's own request spans.

    from otelml.instrument.bentoml import record_api

    @bentoml.service
    class Iris:
        @record_api(model="iris", version="1", output="species")
        @bentoml.api
        def classify(self, sepal_length: float, sepal_width: float, ...) -> str: ...

        @record_api(model="iris", version="1", feature_names=FEATURES, output="species")
        @bentoml.api(batchable=True)
        def classify_batch(self, input: np.ndarray) -> list[str]: ...

`record_api` goes *above* `@bentoml.api`, and it never wraps the function. A batchable API's
function runs once per merged batch, in BentoML's dispatcher task, whose context is that of the
request that happened to start the dispatcher (its span long ended): a wrapper there could
neither split the batch back into requests nor find their spans. Each request's own input and
output exist where BentoML parses the request and renders the response, both in the request's
task with its server span current. So `record_api` takes the `APIMethod` and gives it input and
output descriptors (subclasses of BentoML's own, same names) that keep the parsed input and
record it with the output just before the response is rendered. The function, its signature
and the OpenAPI schema stay BentoML's; a batchable API records one array element per row of
each request, on that request's span.

Features are the API's parameters (`features=[...]` picks some): scalars make one row, lists
make a batch by columns; a single parameter holding an array (with `feature_names`), a
DataFrame, a pydantic model, a list of models or of dicts is the feature set itself.
Predictions are the return value: a bare value or a list/array (one per row) is the output
named `output` (default: the bare `ml.prediction`); a pydantic model, dict or DataFrame gives
one output per field (`predictions=[...]` picks some); a list of models gives rows of outputs.

Spans come from BentoML's tracing configuration (`tracing: {exporter_type: otlp, sample_rate:
1.0, otlp: ...}`): with its default sample rate of 0 no span records anything, which is
counted and said once. Recording never breaks a request: what cannot be read is counted in
`stats()` by reason and said once in the log; exports run in the SDK's batch processor. The
service class also gets a shutdown hook that flushes them (`flush`). Only requests through
BentoML's HTTP server are recorded, not in-process calls of the method.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace

from otelml.instrument.logs import warn_once
from otelml.instrument.recording import record
from otelml.instrument.setup import flush as flush_providers

_log = logging.getLogger("otelml.instrument.bentoml")
_warn = warn_once(_log)
_stats: Counter[str] = Counter()
#: The parsed input of the API call this request task is serving: (API name, input).
_pending: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar(
    "otelml_bentoml_input", default=None
)
# BentoML's names for the fields of `*args` / `**kwargs` parameters.
_VARIADIC = ("args", "kwargs")

M = TypeVar("M")


def stats() -> dict[str, int]:
    """Inferences recorded and not recorded (by reason) since the process started."""
    return dict(_stats)


@dataclass(frozen=True)
class _Options:
    api: str
    model: str
    version: str | None
    features: Sequence[str] | None
    feature_names: Sequence[str] | None
    predictions: Sequence[str] | None
    output: str | None


def record_api(
    *,
    model: str,
    version: str | int | None = None,
    features: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    predictions: Sequence[str] | None = None,
    output: str | None = None,
) -> Callable[[M], M]:
    """Record the features and predictions of every request to a `@bentoml.api` method.

    Place it above `@bentoml.api`. `features` names the parameters to read (default: all),
    `feature_names` names the columns of an array parameter, `predictions` the fields of a
    structured return value, `output` the name of a bare one.
    """

    def decorate(method: M) -> M:
        if not _is_api_method(method):
            raise TypeError(
                "@record_api goes above @bentoml.api (it needs the API method BentoML built, "
                f"got {type(method).__name__})"
            )
        options = _Options(
            api=method.name,  # type: ignore[attr-defined]
            model=model,
            version=None if version is None else str(version),
            features=features,
            feature_names=feature_names,
            predictions=predictions,
            output=output,
        )
        spec = method.input_spec  # type: ignore[attr-defined]
        method.input_spec = _keeping_input(spec, options.api)  # type: ignore[attr-defined]
        method.output_spec = _recording_output(  # type: ignore[attr-defined]
            method.output_spec,  # type: ignore[attr-defined]
            spec,
            options,
        )
        _flush_on_shutdown(method)
        return method

    return decorate


def flush(timeout_millis: int = 5_000) -> None:
    """Export what BentoML's tracer provider and the OTLP log providers hold, within the timeout.

    Runs by itself when the service stops (see `_flush_on_shutdown`); call it from a
    `@bentoml.on_shutdown` method of a service that does not use `record_api`.
    """
    providers: list[Any] = []
    try:
        from bentoml._internal.configuration.containers import (  # type: ignore[import-not-found,unused-ignore]
            BentoMLContainer,
        )
        from bentoml._internal.monitoring.api import (  # type: ignore[import-not-found,unused-ignore]
            _MONITOR_INSTANCES,
        )

        providers.append(BentoMLContainer.tracer_provider.get())
        providers += [getattr(m, "logger_provider", None) for m in _MONITOR_INSTANCES.values()]
    except Exception as error:  # a BentoML without these internals: flush what we can
        _warn(
            "flush", f"otelml: BentoML's providers not found ({error!r}); flushing the global ones"
        )
    flush_providers(timeout_millis, also=providers)


def _flush_on_shutdown(method: Any) -> None:
    """Give the service class a shutdown hook that calls `flush`, when the class is created.

    BentoML's worker runs under uvicorn, which ends the process by re-raising SIGTERM after a
    graceful shutdown, so the SDK's atexit flush never runs and the spans of the last seconds
    would be lost. Shutdown hooks (`@bentoml.on_shutdown`: members marked
    `__bentoml_shutdown_hook__`) do run; the API method adds one to the class it is defined
    in through `__set_name__`, which Python calls for every attribute of a new class.
    """
    cls = type(method)
    flushing = _FLUSHING.get(cls)
    if flushing is None:
        namespace = {"__slots__": (), "__set_name__": _add_hook, "__module__": cls.__module__}
        flushing = type(cls.__name__, (cls,), namespace)
        flushing.__qualname__ = cls.__qualname__
        _FLUSHING[cls] = flushing
    try:
        method.__class__ = flushing
    except TypeError:  # another layout: no automatic hook, say how to add one
        _warn(
            "hook",
            "otelml: add a @bentoml.on_shutdown method calling "
            "otelml.instrument.bentoml.flush() so the last spans are not lost at shutdown",
        )


_FLUSHING: dict[type, type] = {}


def _add_hook(method: Any, owner: type, name: str) -> None:
    parent = getattr(super(type(method), method), "__set_name__", None)
    if parent is not None:
        parent(owner, name)
    if not hasattr(owner, _HOOK):
        setattr(owner, _HOOK, _shutdown_hook)


def _shutdown_hook(service: Any) -> None:
    flush()


_shutdown_hook.__bentoml_shutdown_hook__ = True  # type: ignore[attr-defined]
#: The hook's name on the service class (BentoML skips names starting with "__").
_HOOK = "_otelml_flush_on_shutdown"


def _is_api_method(value: Any) -> bool:
    return any(
        cls.__name__ == "APIMethod" and cls.__module__.startswith("_bentoml_sdk")
        for cls in type(value).__mro__
    )


def _keeping_input(spec: Any, api: str) -> Any:
    """`spec`, whose request parsing also keeps the parsed input for the response side."""

    class Input(spec):  # type: ignore[misc]
        @classmethod
        async def from_http_request(cls, request: Any, serde: Any) -> Any:
            data = await super().from_http_request(request, serde)
            _pending.set((api, data))
            return data

    return _named_like(Input, spec)


def _recording_output(spec: Any, input_spec: Any, options: _Options) -> Any:
    """`spec`, whose response rendering first records the kept input with this output."""

    class Output(spec):  # type: ignore[misc]
        @classmethod
        async def to_http_response(cls, obj: Any, serde: Any) -> Any:
            pending = _pending.get()
            if pending is not None and pending[0] == options.api:
                _pending.set(None)
                _record(options, input_spec, pending[1], obj)
            return await super().to_http_response(obj, serde)

    return _named_like(Output, spec)


def _named_like(cls: Any, original: Any) -> Any:
    """The same names as BentoML's class, so schemas and error messages do not change."""
    cls.__name__ = original.__name__
    cls.__qualname__ = original.__qualname__
    cls.__module__ = original.__module__
    return cls


def _record(options: _Options, spec: Any, data: Any, result: Any) -> None:
    try:
        if not trace.get_current_span().is_recording():
            _stats["not_recorded:not_sampled"] += 1
            _warn(
                "not_sampled",
                "otelml: the request span is not recording, so nothing is recorded: set "
                "BentoML's tracing (exporter_type: otlp, sample_rate > 0)",
            )
            return
        if _is_stream(result):
            _stats["not_recorded:stream"] += 1
            _warn("stream", f"otelml: API {options.api!r} streams its output: not recorded")
            return
        record(
            _features(options, spec, data),
            _prediction(options, result),
            model=options.model,
            version=options.version,
            feature_names=options.feature_names,
        )
        _stats["recorded"] += 1
    except Exception as error:  # never break the request
        reason = type(error).__name__
        _stats[f"failed:{reason}"] += 1
        _warn(reason, f"otelml could not record an inference ({reason}: {error}); counted")


# --- reading inputs and outputs -------------------------------------------------------------


def _features(options: _Options, spec: Any, data: Any) -> Any:
    if getattr(spec, "__root_input__", False):
        return _plain(data.root if _is_root_model(data) else data)
    fields = [f for f in type(data).model_fields if f not in _VARIADIC]
    chosen = [f for f in (options.features or fields) if f in fields]
    values = {name: getattr(data, name) for name in chosen}
    if len(values) == 1:
        (value,) = values.values()
        if options.feature_names is not None or _is_feature_set(value):
            return _plain(value)
    rows = [name for name, value in values.items() if _is_rows(value)]
    if len(rows) != 1:
        return {name: _plain(value) for name, value in values.items()}
    table = _plain(values.pop(rows[0]))  # one list of rows; the other values apply to each
    columns = {k: [row.get(k) for row in table] for k in dict.fromkeys(k for r in table for k in r)}
    columns.update({name: _plain(value) for name, value in values.items()})
    return columns


def _is_feature_set(value: Any) -> bool:
    """A parameter that holds a whole feature set (rather than being one feature)."""
    if hasattr(value, "model_dump") or isinstance(value, Mapping):
        return True
    kind = type(value)
    if kind.__module__.startswith("pandas") and kind.__name__ in ("DataFrame", "Series"):
        return True
    if kind.__name__ == "ndarray" and getattr(value, "ndim", 0) == 2:
        return True
    return _is_rows(value)


def _is_rows(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(hasattr(v, "model_dump") or isinstance(v, Mapping) for v in value)
    )


def _prediction(options: _Options, result: Any) -> Any:
    if result is None:
        return None
    if _is_root_model(result):
        result = result.root
    if hasattr(result, "model_dump") or isinstance(result, Mapping):
        values = result.model_dump() if hasattr(result, "model_dump") else dict(result)
        if options.predictions is not None:
            values = {k: v for k, v in values.items() if k in options.predictions}
        return {k: _plain(v) for k, v in values.items() if v is not None} or None
    if isinstance(result, list) and result and hasattr(result[0], "model_dump"):
        rows = [r.model_dump() for r in result]
        keys = options.predictions or list(dict.fromkeys(k for row in rows for k in row))
        return {k: [row.get(k) for row in rows] for k in keys}
    kind = type(result)
    if kind.__module__.startswith("pandas") and kind.__name__ == "DataFrame":
        return result if options.predictions is None else result[list(options.predictions)]
    return result if options.output is None else {options.output: result}


def _plain(value: Any) -> Any:
    """Pydantic values as plain data (`record` reads mappings, arrays and DataFrames)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list) and value and hasattr(value[0], "model_dump"):
        return [v.model_dump() for v in value]
    return value


def _is_root_model(value: Any) -> bool:
    return hasattr(value, "model_dump") and "root" in getattr(type(value), "model_fields", {})


def _is_stream(value: Any) -> bool:
    return inspect.isgenerator(value) or inspect.isasyncgen(value)
