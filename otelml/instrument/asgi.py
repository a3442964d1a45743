"""A lean ASGI server-span middleware: one SERVER span per HTTP request, nothing else.

Why not opentelemetry-instrumentation-asgi: it costs ~0.45 ms of CPU per request before any
export — per-message wrappers of `receive`/`send` (child spans unless excluded), route matching
of its own, a URL rebuilt and parsed for every request, metrics instruments, header getters
that decode every header per lookup. This middleware writes the same HTTP span attributes
(the semantic conventions the instrumentation writes, old, new or both as
`OTEL_SEMCONV_STABILITY_OPT_IN` says) in one pass over the headers, takes the route from the
scope the router fills in, and wraps `send` only to read the response status.

Trace context: the incoming W3C (or whatever `OTEL_PROPAGATORS` sets) context is continued;
the span is current while the app runs, so `record()` and outgoing calls see it; a global
response propagator (opentelemetry-instrumentation's `OTEL_PYTHON_..._PROPAGATOR`), when set,
adds its headers to the response.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_TRACER_NAME = "otelml.instrument.asgi"


def semconv_modes() -> tuple[bool, bool]:
    """(old, new) HTTP attribute names, as `OTEL_SEMCONV_STABILITY_OPT_IN` chooses them."""
    options = {o.strip() for o in os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")}
    if "http/dup" in options:
        return True, True
    if "http" in options:
        return False, True
    return True, False


def _sanitize_method(method: str) -> str:
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "_OTHER"


def _redact(url: str) -> str:
    try:
        from opentelemetry.util.http import redact_url
    except ImportError:  # without opentelemetry-util-http: credentials only
        scheme, sep, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        return scheme + sep + host.rpartition("@")[2] + slash + path
    return str(redact_url(url))


def _synthetic(user_agent: str) -> str | None:
    try:
        from opentelemetry.util.http import detect_synthetic_user_agent
    except ImportError:
        return None
    found = detect_synthetic_user_agent(user_agent)
    return None if found is None else str(found)


class _Carrier(dict[str, str]):
    """The request headers a propagator reads (lower-case names, values joined by ',')."""


def _carrier_getter() -> Any:
    from opentelemetry.propagators.textmap import Getter

    class HeaderGetter(Getter[_Carrier]):
        def get(self, carrier: _Carrier, key: str) -> list[str] | None:
            value = carrier.get(key.lower())
            return None if value is None else [value]

        def keys(self, carrier: _Carrier) -> list[str]:
            return list(carrier)

    return HeaderGetter()


class ServerSpanMiddleware:
    """ASGI middleware: `ServerSpanMiddleware(app, tracer_provider=None)`."""

    def __init__(self, app: App, tracer_provider: Any = None) -> None:
        from otelml import __version__

        self.app = app
        self.tracer = trace.get_tracer(_TRACER_NAME, __version__, tracer_provider)
        self.old, self.new = semconv_modes()
        self.getter = _carrier_getter()
        self._propagator: Any = None
        self._fields: frozenset[bytes] = frozenset()
        self.response_propagator = _response_propagator_getter()

    def _propagated_fields(self) -> frozenset[bytes]:
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:  # OTEL_PROPAGATORS / set_global_textmap
            self._propagator = propagator
            self._fields = frozenset(f.lower().encode("latin-1") for f in propagator.fields)
        return self._fields

    def _attributes(
        self, scope: Scope, host: str | None, agent: str | None
    ) -> tuple[dict[str, Any], str]:
        old, new = self.old, self.new
        server = scope.get("server") or ("0.0.0.0", 80)
        port = server[1]
        server_host = server[0] + (":" + str(port) if str(port) != "80" else "")
        scheme = scope.get("scheme")
        version = scope.get("http_version")
        path = scope.get("path")
        raw_query = scope.get("query_string")
        query = raw_query.decode("utf8") if isinstance(raw_query, bytes) else raw_query
        method: str = scope.get("method", "")
        sanitized = _sanitize_method(method) if method else ""
        attributes: dict[str, Any] = {}

        def both(old_key: str, new_key: str, value: Any) -> None:
            """One value under the old semantic-convention name, the new one, or both."""
            if old:
                attributes[old_key] = value
            if new:
                attributes[new_key] = value

        if scheme:
            both("http.scheme", "url.scheme", scheme)
        if server_host:
            both("http.host", "server.address", server_host)
        if port:
            both("net.host.port", "server.port", int(port))
        if version:
            both("http.flavor", "network.protocol.version", version)
        if path:
            both("http.target", "url.path", path)
            if new and query:
                attributes["url.query"] = query
        if old:
            url = (
                scope.get("scheme", "http") + "://" + (host or server_host) + scope.get("path", "")
            )
            if query:
                from urllib.parse import unquote

                url += "?" + unquote(query)
            if query or "@" in url:
                url = _redact(url)
            attributes["http.url"] = url
        if method:
            if old:
                attributes["http.method"] = sanitized
            if new:
                attributes["http.request.method"] = sanitized
                if sanitized != method:
                    attributes["http.request.method_original"] = method
        if host is not None and old:
            attributes["http.server_name"] = host
        if agent:
            both("http.user_agent", "user_agent.original", agent)
            synthetic = _synthetic(agent)
            if synthetic:
                attributes["user_agent.synthetic.type"] = synthetic
        client = scope.get("client")
        if client is not None:
            both("net.peer.ip", "client.address", client[0])
            both("net.peer.port", "client.port", int(client[1]))
        return attributes, sanitized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = self._propagated_fields()
        carrier = _Carrier()
        host: str | None = None
        agent: str | None = None
        for name, value in scope["headers"]:
            if name == b"host":
                text = value.decode("latin-1")
                host = text if host is None else host + "," + text
            elif name == b"user-agent" and agent is None:
                agent = value.decode("latin-1")
            if name in fields:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                carrier[key] = carrier[key] + "," + text if key in carrier else text
        attributes, method = self._attributes(scope, host, agent)
        parent = propagate.extract(carrier, getter=self.getter) if carrier else None
        span = self.tracer.start_span(
            "HTTP" if method == "_OTHER" else method or "HTTP",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status: list[int] = []
        old, new = self.old, self.new

        response_propagator = self.response_propagator

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                if response_propagator is not None:
                    _response_headers(message, response_propagator)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as error:
            if span.is_recording():
                span.record_exception(error)
                if new:
                    span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise
        finally:
            otel_context.detach(token)
            if span.is_recording():
                late: dict[str, Any] = {}  # one set_attributes: one lock, not one per key
                template = getattr(scope.get("route"), "path", None)
                if template:
                    late["http.route"] = template
                    span.update_name(f"{method if method != '_OTHER' else 'HTTP'} {template}")
                if status:
                    code = status[0]
                    if old:
                        late["http.status_code"] = code
                    if new:
                        late["http.response.status_code"] = code
                    if code >= 500 or code < 100:
                        if new:
                            late["error.type"] = str(code)
                        span.set_status(Status(StatusCode.ERROR))
                span.set_attributes(late)
            span.end()


def _response_propagator_getter() -> Callable[[], Any] | None:
    """opentelemetry-instrumentation's global response propagator (set from
    OTEL_PYTHON_..._RESPONSE_PROPAGATOR by `opentelemetry-instrument`), where installed."""
    try:
        from opentelemetry.instrumentation.propagators import get_global_response_propagator
    except ImportError:
        return None
    return get_global_response_propagator


def _response_headers(message: Message, getter: Callable[[], Any]) -> None:
    """The response propagator's headers on the response, when one is set (none by default)."""
    propagator = getter()
    if propagator is None:
        return
    headers: dict[str, str] = {}
    propagator.inject(headers)
    if headers:
        message["headers"] = [
            *message.get("headers", []),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
