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
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

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
from otelml.instrument.spans import LeanTracer
from otelml.proxy.extract import INTERNAL_ERROR, Body, Extractor, Problems
from otelml.proxy.metrics import UNMATCHED, ProxyMetrics
from otelml.proxy.rules import Route, Rules
from otelml.proxy.upstream import UpstreamError, UpstreamPool

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
_log = logging.getLogger(__name__)
_ERRORS = {
    "connect": (502, "cannot connect to upstream"),
    "timeout": (504, "upstream timed out"),
    "protocol": (502, "upstream broke the protocol"),
}


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
        self.rules = rules
        self.metrics = metrics
        #: Requests between arrival and their span's end (the span ends after the answer).
        self.in_flight = 0
        self.tracer = provider.get_tracer("otelml.proxy", __version__)
        # The SDK's spans without their per-span machinery, where nothing can tell them apart.
        self.lean = LeanTracer.for_provider(provider, "otelml.proxy", __version__)
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
        self.timeout = timeout
        self.pool = UpstreamPool(upstream, timeout=timeout, connect_timeout=min(timeout, 10.0))

    async def aclose(self) -> None:
        self.pool.close()

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
        self.in_flight += 1
        try:
            await self._proxy(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        route_label = matched[0].label if matched is not None else UNMATCHED
        try:
            status, response_body, response_encoding = await self._exchange(
                method, target, forwarded, content, send, keep, route_label
            )
        except BaseException:  # cancelled (server shutdown): the span still ends
            if span is not None:
                span.set_status(Status(StatusCode.ERROR))
                span.end()
            raise
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
            try:
                attributes = compiled.extractor.extract(
                    params,
                    Body(request_body, headers.get("content-encoding", "")),
                    Body(response_body, response_encoding),
                    headers,
                    problems,
                )
            except Exception:  # a bug of ours must cost the span's ml.*, never the request
                _log.exception("otelml proxy: extraction failed on %s", route_label)
                problems[INTERNAL_ERROR] += 1
                attributes = {}
            span.set_attributes(attributes)
            if problems:
                self.metrics.problems(route_label, problems)
            rows = _rows(attributes)
            if rows:
                self.metrics.add_rows(route_label, rows)
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
        if self.lean is not None:
            return self.lean.start(name, SpanKind.SERVER, context, attributes, start_ns)
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
            return (first if len(first) <= self.limit else None), first
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
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes],
        send: Send,
        keep: bool,
        route_label: str,
    ) -> tuple[int, bytes | None, str]:
        """Forward one request, stream the answer to the client.

        Returns the status, the body kept for extraction (None: not kept) and its encoding.
        """
        try:
            response = await self.pool.request(method.encode(), target, headers, content)
        except ClientDisconnected:
            return CLIENT_CLOSED, None, ""
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(route_label, exc.reason).inc()
            status, message = _ERRORS[exc.reason]
            return await _answer(send, *_error_body(status, message)), None, ""
        try:
            status = response.status
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": _without_hop_by_hop(response.headers, HOP_BY_HOP),
                }
            )
            keep = keep and 200 <= status < 300
            encoding = ""
            if keep:
                for name, value in response.headers:
                    if name.lower() == b"content-encoding":
                        encoding = value.decode("latin-1")
            kept: list[bytes] | None = [] if keep else None
            size = 0
            last = b""
            try:
                while (chunk := await response.next_chunk(self.timeout)) is not None:
                    if kept is not None:
                        size += len(chunk)
                        if size <= self.limit:
                            kept.append(chunk)
                        else:
                            kept = None
                    if response.drained:  # the usual answer, whole at once: one message
                        last = chunk
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError:
                # Too late for a status of our own: returning without the last message makes
                # the server close the connection, so the client sees a truncated response
                # rather than a wrong complete one.
                self.metrics.upstream_errors.labels(route_label, "broken").inc()
                return status, None, ""
            # Back to the pool before the client can send its next request.
            response.close()
            await send({"type": "http.response.body", "body": last, "more_body": False})
            return status, (b"".join(kept) if kept is not None else None), encoding
        finally:
            response.close()


class ClientDisconnected(Exception):
    """The client went away in the middle of its request body."""


#: Status recorded for requests whose client left before its body was complete (nginx's).
CLIENT_CLOSED = 499


async def _stream(chunks: list[bytes], receive: Receive) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Never end the upstream body as if it were complete: abort the upstream request.
            raise ClientDisconnected
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
