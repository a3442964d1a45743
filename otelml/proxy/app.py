"""The reverse proxy, as a plain ASGI app: every request goes upstream unchanged; requests
that match a rule also leave one SERVER span with their `ml.*` attributes.

What the client gets is what the upstream sent: the status, the headers (less the hop-by-hop
ones of RFC 9110 §7.6.1, which belong to each connection) and the body bytes as they came
(content encodings included). The proxy answers by itself only when there is no upstream
answer: 502 when it cannot connect or the upstream breaks the protocol, 504 when the upstream
does not answer within `timeout`. Upstream, it adds W3C `traceparent`/`tracestate` (continuing
the client's trace when it sent one) and drops `Expect` (the proxy has already read the body).

Bodies: routes without rules are streamed both ways. Routes with rules keep a copy of each
body up to `max_body_bytes` (the response is still streamed to the client as it arrives);
JSON is parsed only after the client has its response, and never on other routes.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv.attributes import (
    client_attributes,
    error_attributes,
    http_attributes,
    network_attributes,
    server_attributes,
    url_attributes,
    user_agent_attributes,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelml import __version__
from otelml.proxy.extract import Body, Extractor, Problems
from otelml.proxy.metrics import UNMATCHED, ProxyMetrics
from otelml.proxy.rules import Route, Rules

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding", b"upgrade"}
)
_DROPPED_UPSTREAM = HOP_BY_HOP | {b"expect", b"traceparent", b"tracestate"}
_JSON = [(b"content-type", b"application/json")]


def _error_body(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": f"otelml proxy: {message}"}).encode()
    return status, [*_JSON, (b"content-length", str(len(body)).encode())], body


def _without_hop_by_hop(
    headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    """Headers less `dropped` and less those the Connection header names."""
    extra: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            extra.update(token.strip().lower() for token in value.split(b","))
    drop = dropped | extra if extra else dropped
    return [(n, v) for n, v in headers if n.lower() not in drop]


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    method: str
    pattern: Any  # re.Pattern[str]
    label: str
    span_name: str
    extractor: Extractor


class ProxyApp:
    """ASGI app: `ProxyApp(upstream, rules, tracer_provider, metrics)`; call `aclose()` at the
    end to close the upstream connections."""

    def __init__(
        self,
        upstream: str,
        rules: Rules,
        provider: TracerProvider,
        metrics: ProxyMetrics,
        max_attributes: int,
        timeout: float = 60.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules = rules
        self.metrics = metrics
        self.tracer = provider.get_tracer("otelml.proxy", __version__)
        self.limit = rules.max_body_bytes
        self.routes = [
            _CompiledRoute(
                route=route,
                method=route.method,
                pattern=route.pattern(),
                label=route.path,
                span_name=f"{route.method if route.method != '*' else 'HTTP'} {route.path}",
                extractor=Extractor(route, rules.max_body_bytes, max_attributes),
            )
            for route in rules.routes
        ]
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            # No pool cap: clients already bound concurrency, and a pool wait would be
            # reported as a timeout that the upstream never had.
            follow_redirects=False,
            trust_env=False,
            # httpcore writes the head and the body of a request separately: without
            # TCP_NODELAY, Nagle's algorithm holds the body until the upstream's delayed ACK
            # (~40 ms on Linux) on every request.
            transport=httpx.AsyncHTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
            ),
            # Set-Cookie of one client must never be sent with another client's request.
            cookies=_NoCookies(),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _match(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.method != "*" and compiled.method != method:
                continue
            found = compiled.pattern.fullmatch(path)
            if found is not None:
                return compiled, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not proxied
            return
        start_ns = time.time_ns()
        method: str = scope["method"]
        matched = self._match(method, scope["path"])
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
        traced = matched is not None or self.rules.trace_unmatched
        span: trace.Span | None = None
        forwarded = _without_hop_by_hop(raw_headers, _DROPPED_UPSTREAM)
        if traced:
            span = self._start_span(scope, matched, headers, start_ns)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            forwarded += [(k.encode(), v.encode("latin-1")) for k, v in carrier.items()]
        else:
            # Not traced: the client's own trace context passes through untouched.
            forwarded += [(n, v) for n, v in raw_headers if n in (b"traceparent", b"tracestate")]

        keep = matched is not None
        request_body, content = await self._request_body(receive, headers, keep)
        url = self.upstream + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        route_label = matched[0].label if matched is not None else UNMATCHED
        status, response_body, response_encoding = await self._exchange(
            method, url, forwarded, content, send, keep, route_label
        )
        end_ns = time.time_ns()
        self.metrics.request(route_label, method, status)
        if span is None:
            return
        span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute(error_attributes.ERROR_TYPE, str(status))
        if matched is not None and 200 <= status < 300:
            compiled, params = matched
            problems: Problems = Counter()
            attributes = compiled.extractor.extract(
                params,
                Body(request_body, headers.get("content-encoding", "")),
                Body(response_body, response_encoding),
                headers,
                problems,
            )
            span.set_attributes(attributes)
            if problems:
                self.metrics.problems(route_label, problems)
            rows = _rows(attributes)
            if rows:
                self.metrics.rows.labels(route_label).inc(rows)
        span.end(end_time=end_ns)

    def _start_span(
        self,
        scope: Scope,
        matched: tuple[_CompiledRoute, dict[str, str]] | None,
        headers: dict[str, str],
        start_ns: int,
    ) -> trace.Span:
        method: str = scope["method"]
        attributes: dict[str, Any] = {
            http_attributes.HTTP_REQUEST_METHOD: method,
            url_attributes.URL_PATH: scope["path"],
            url_attributes.URL_SCHEME: scope.get("scheme", "http"),
            network_attributes.NETWORK_PROTOCOL_VERSION: scope.get("http_version", "1.1"),
        }
        if matched is not None:
            attributes[http_attributes.HTTP_ROUTE] = matched[0].route.path
            name = matched[0].span_name
        else:
            name = method
        client = scope.get("client")
        if client:
            attributes[client_attributes.CLIENT_ADDRESS] = client[0]
        host = headers.get("host")
        if host:
            address, _, port = host.rpartition(":") if "]" not in host[-1:] else (host, "", "")
            if port.isdigit() and address:
                attributes[server_attributes.SERVER_ADDRESS] = address
                attributes[server_attributes.SERVER_PORT] = int(port)
            else:
                attributes[server_attributes.SERVER_ADDRESS] = host
        agent = headers.get("user-agent")
        if agent:
            attributes[user_agent_attributes.USER_AGENT_ORIGINAL] = agent
        context = propagate.extract(headers)
        return self.tracer.start_span(
            name, context=context, kind=SpanKind.SERVER, attributes=attributes, start_time=start_ns
        )

    async def _request_body(
        self, receive: Receive, headers: dict[str, str], keep: bool
    ) -> tuple[bytes | None, bytes | AsyncIterator[bytes]]:
        """(the body kept for extraction or None, what to send upstream).

        A body that arrives in one piece is sent as bytes; otherwise it is streamed, after
        the first `max_body_bytes` have been kept (rules routes only).
        """
        message = await receive()
        first: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return first, first
        length = headers.get("content-length", "")
        if keep and not (length.isdigit() and int(length) > self.limit):
            chunks = [first]
            size = len(first)
            while size <= self.limit:
                message = await receive()
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    return body, body
            return None, _stream(chunks, receive)
        return None, _stream([first], receive)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes],
        send: Send,
        keep: bool,
        route_label: str,
    ) -> tuple[int, bytes | None, str]:
        """Forward one request, stream the answer to the client.

        Returns the status, the body kept for extraction (None: not kept) and its encoding.
        """
        request = self.client.build_request(method, url, headers=headers, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            self.metrics.upstream_errors.labels(route_label, "timeout").inc()
            return await _answer(send, *_error_body(504, "upstream timed out")), None, ""
        except httpx.ConnectError:
            self.metrics.upstream_errors.labels(route_label, "connect").inc()
            return await _answer(send, *_error_body(502, "cannot connect to upstream")), None, ""
        except httpx.TransportError:
            self.metrics.upstream_errors.labels(route_label, "protocol").inc()
            return await _answer(send, *_error_body(502, "upstream broke the protocol")), None, ""
        try:
            status = response.status_code
            raw = response.headers.raw
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": _without_hop_by_hop(raw, HOP_BY_HOP),
                }
            )
            keep = keep and 200 <= status < 300
            encoding = response.headers.get("content-encoding", "") if keep else ""
            kept: list[bytes] | None = [] if keep else None
            size = 0
            try:
                async for chunk in response.aiter_raw():
                    if kept is not None:
                        size += len(chunk)
                        if size <= self.limit:
                            kept.append(chunk)
                        else:
                            kept = None
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError:
                # Too late for a status of our own: returning without the last message makes
                # the server close the connection, so the client sees a truncated response
                # rather than a wrong complete one.
                self.metrics.upstream_errors.labels(route_label, "broken").inc()
                return status, None, ""
            # Back to the pool before the client can send its next request: else that
            # request finds no idle connection and the pool grows.
            await response.aclose()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return status, (b"".join(kept) if kept is not None else None), encoding
        finally:
            await response.aclose()


async def _stream(chunks: list[bytes], receive: Receive) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return status


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _rows(attributes: dict[str, Any]) -> int:
    """Rows the span describes: the longest array, or 1 for a single request."""
    return max((len(v) for v in attributes.values() if isinstance(v, list)), default=1)


class _NoCookies(httpx.Cookies):
    """A cookie jar that stores nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None
