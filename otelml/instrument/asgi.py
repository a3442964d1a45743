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

from otelml.instrument.spans import LeanSpan, LeanTracer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_TRACER_NAME = "otelml.instrument.asgi"
#: Distinct server addresses / user agents whose attributes are kept (then the cache restarts).
_CACHED = 64
#: Distinct requests (server, path, query, method, host, user agent) whose attributes are kept.
_CACHED_REQUESTS = 256


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
    """ASGI middleware: `ServerSpanMiddleware(app, tracer_provider=None)`.

    `before_request`, when given, runs before each request is traced (the FastAPI
    integration wraps routes added late there, with no ASGI layer of its own)."""

    def __init__(
        self,
        app: App,
        tracer_provider: Any = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        from otelml import __version__

        self.app = app
        self.version = __version__
        self.tracer_provider = tracer_provider
        self.tracer = trace.get_tracer(_TRACER_NAME, __version__, tracer_provider)
        self.before_request = before_request
        self.old, self.new = semconv_modes()
        self.getter = _carrier_getter()
        self._propagator: Any = None
        self._fields: frozenset[bytes] = frozenset()
        self.response_propagator = _response_propagator_getter()
        self._lean_provider: Any = None
        self._lean: LeanTracer | None = None
        self._servers: dict[Any, tuple[dict[str, Any], str]] = {}
        self._agents: dict[str, str | None] = {}
        self._requests: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}

        def keys(old_key: str, new_key: str) -> tuple[str, ...]:
            """One attribute under the old semantic-convention name, the new one, or both."""
            return (old_key,) * self.old + (new_key,) * self.new

        self._scheme_keys = keys("http.scheme", "url.scheme")
        self._host_keys = keys("http.host", "server.address")
        self._port_keys = keys("net.host.port", "server.port")
        self._version_keys = keys("http.flavor", "network.protocol.version")
        self._path_keys = keys("http.target", "url.path")
        self._agent_keys = keys("http.user_agent", "user_agent.original")
        self._peer_keys = keys("net.peer.ip", "client.address")
        self._peer_port_keys = keys("net.peer.port", "client.port")

    def _start_span(self, name: str, parent: Any, attributes: dict[str, Any]) -> Any:
        """The SERVER span: a lean one where the provider allows (see `spans`), else the
        SDK's (or whichever tracer the provider gives)."""
        provider = self.tracer_provider or trace.get_tracer_provider()
        if provider is not self._lean_provider:  # set once; or the global one was set late
            self._lean_provider = provider
            self._lean = LeanTracer.for_provider(provider, _TRACER_NAME, self.version)
        lean = self._lean
        if lean is not None:
            return lean.start(name, SpanKind.SERVER, parent, attributes, owned=True)
        return self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )

    def _propagated_fields(self) -> frozenset[bytes]:
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:  # OTEL_PROPAGATORS / set_global_textmap
            self._propagator = propagator
            self._fields = frozenset(f.lower().encode("latin-1") for f in propagator.fields)
        return self._fields

    def _server_attributes(self, scope: Scope) -> tuple[dict[str, Any], str]:
        """The attributes every request to one server address, scheme and HTTP version
        shares (cached: they are the same for every request on a connection)."""
        server = scope.get("server") or ("0.0.0.0", 80)
        scheme = scope.get("scheme")
        version = scope.get("http_version")
        key = (tuple(server), scheme, version)
        cached = self._servers.get(key)
        if cached is not None:
            return cached
        port = server[1]
        server_host = server[0] + (":" + str(port) if str(port) != "80" else "")
        attributes: dict[str, Any] = {}
        for keys, value in (
            (self._scheme_keys, scheme),
            (self._host_keys, server_host),
            (self._port_keys, int(port) if port else None),
            (self._version_keys, version),
        ):
            if value:
                attributes.update(dict.fromkeys(keys, value))
        if len(self._servers) >= _CACHED:
            self._servers.clear()
        self._servers[key] = cached = (attributes, server_host)
        return cached

    def _synthetic(self, agent: str) -> str | None:
        found = self._agents.get(agent, "")
        if found == "":
            found = _synthetic(agent)
            if len(self._agents) >= _CACHED:
                self._agents.clear()
            self._agents[agent] = found
        return found

    def _attributes(
        self, scope: Scope, host: str | None, agent: str | None
    ) -> tuple[dict[str, Any], str]:
        """The span's attributes at its start and the sanitized method. All but the client's
        address are the same for every request with the same server, path, query, method,
        host and user agent (a model service's usual traffic): those are cached."""
        key = (
            scope.get("server"),
            scope.get("scheme"),
            scope.get("http_version"),
            scope.get("path"),
            scope.get("query_string"),
            scope.get("method"),
            host,
            agent,
        )
        try:
            cached = self._requests.get(key)
            hashable = True
        except TypeError:  # a server given as a list: not a key
            cached, hashable = None, False
        if cached is None:
            cached = self._request_attributes(scope, host, agent)
            if hashable:
                if len(self._requests) >= _CACHED_REQUESTS:
                    self._requests.clear()
                self._requests[key] = cached
        shared, method = cached
        attributes = shared.copy()
        client = scope.get("client")
        if client is not None:
            for name in self._peer_keys:
                attributes[name] = client[0]
            for name in self._peer_port_keys:
                attributes[name] = int(client[1])
        return attributes, method

    def _request_attributes(
        self, scope: Scope, host: str | None, agent: str | None
    ) -> tuple[dict[str, Any], str]:
        old, new = self.old, self.new
        shared, server_host = self._server_attributes(scope)
        attributes = shared.copy()
        path = scope.get("path")
        raw_query = scope.get("query_string")
        query = raw_query.decode("utf8") if isinstance(raw_query, bytes) else raw_query
        method: str = scope.get("method", "")
        sanitized = _sanitize_method(method) if method else ""
        if path:
            attributes.update(dict.fromkeys(self._path_keys, path))
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
            attributes.update(dict.fromkeys(self._agent_keys, agent))
            synthetic = self._synthetic(agent)
            if synthetic:
                attributes["user_agent.synthetic.type"] = synthetic
        return attributes, sanitized

    def _read_headers(self, headers: Any) -> tuple[str | None, str | None, _Carrier | None]:
        """(host, user agent, the propagator's headers) in one pass; repeated headers are
        joined by ',' (hosts, propagated fields) or the first kept (user agent), as the
        OpenTelemetry instrumentation reads them."""
        fields = self._propagated_fields()
        if type(headers) is not list:
            headers = list(headers)  # any iterable of pairs, as ASGI allows
        named = dict(headers)  # one C pass; a repeated name makes it shorter
        if len(named) == len(headers):
            host = named.get(b"host")
            agent = named.get(b"user-agent")
            carried = fields.intersection(named)
            return (
                None if host is None else host.decode("latin-1"),
                None if agent is None else agent.decode("latin-1"),
                _Carrier(
                    (name.decode("latin-1"), named[name].decode("latin-1")) for name in carried
                )
                if carried
                else None,
            )
        carrier: _Carrier | None = None
        host_text: str | None = None
        agent_text: str | None = None
        for name, value in headers:
            if name == b"host":
                text = value.decode("latin-1")
                host_text = text if host_text is None else host_text + "," + text
            elif name == b"user-agent" and agent_text is None:
                agent_text = value.decode("latin-1")
            if name in fields:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                if carrier is None:
                    carrier = _Carrier()
                carrier[key] = carrier[key] + "," + text if key in carrier else text
        return host_text, agent_text, carrier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.before_request is not None:
            self.before_request()
        host, agent, carrier = self._read_headers(scope["headers"])
        attributes, method = self._attributes(scope, host, agent)
        parent = propagate.extract(carrier, getter=self.getter) if carrier else None
        span = self._start_span(
            "HTTP" if method == "_OTHER" else method or "HTTP", parent, attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status: list[int] = []
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
                if self.new:
                    span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise
        finally:
            otel_context.detach(token)
            if span.is_recording():
                self._end(span, method, getattr(scope.get("route"), "path", None), status)
            else:
                span.end()

    def _end(self, span: Any, method: str, template: str | None, status: list[int]) -> None:
        """The route, the status and the span's end: one `finish` (one lock) on a lean span."""
        late: dict[str, Any] = {}
        name = None
        if template:
            late["http.route"] = template
            name = f"{method if method != '_OTHER' else 'HTTP'} {template}"
        if status:
            code = status[0]
            if self.old:
                late["http.status_code"] = code
            if self.new:
                late["http.response.status_code"] = code
            if code >= 500 or code < 100:
                if self.new:
                    late["error.type"] = str(code)
                span.set_status(Status(StatusCode.ERROR))
        if type(span) is LeanSpan:
            span.finish(name, late)
            return
        if name is not None:
            span.update_name(name)
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
