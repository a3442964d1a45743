"""Slow clients cannot starve the rest: bodies are charged as they arrive and time out,
connections that stall in their request header are closed, both counted.

Forty clients send a chunked body at one byte every half second (at the default 16 MiB
`max_request_bytes` each would once have reserved the whole 64 MiB in-flight budget), ten more
trickle a request header; meanwhile the OpenTelemetry SDK's exporters, over HTTP and gRPC,
get every span accepted.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelml import semconv
from tests.conftest import RunningGateway, loopback_config, running_gateway

SLOW_BODIES = 40
SLOW_HEADERS = 10
BODY_TIMEOUT_S = 4.0
IDLE_TIMEOUT_S = 2.0


class SlowClient:
    """A raw socket that sends `head` and then one byte of `trickle` every half second."""

    def __init__(self, port: int, head: bytes, trickle: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head)
        self.trickle = trickle
        self.answer = b""
        self.closed_after: float | None = None
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.5)
        for byte in self.trickle:
            try:
                self.sock.sendall(bytes([byte]))
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            self.answer += data
            if b"\r\n\r\n" in self.answer:
                break
        self.closed_after = time.monotonic() - self._started

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self.sock.close()


def _refused(gw: RunningGateway, reason: str) -> float:
    key = (
        f"{semconv.RECEIVER_REQUESTS_REFUSED}_total",
        frozenset({"transport": "http", "reason": reason}.items()),
    )
    sample = gw.samples().get(key)
    return float(sample.value) if sample else 0.0


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    limits = {"body_timeout": f"{BODY_TIMEOUT_S}s", "idle_timeout": f"{IDLE_TIMEOUT_S}s"}
    with running_gateway(loopback_config(limits=limits)) as gw:
        yield gw


def test_slow_clients_leave_sdk_exports_accepted_and_are_cut_off(gateway: RunningGateway) -> None:
    gw = gateway
    port = gw.ports.http
    assert port is not None
    chunked = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    # Each byte of body is its own one-byte chunk: "1\r\n\n\r\n" repeated.
    bodies = [SlowClient(port, chunked, b"1\r\n\n\r\n" * 100) for _ in range(SLOW_BODIES)]
    header = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    headers = [SlowClient(port, b"", header) for _ in range(SLOW_HEADERS)]
    time.sleep(1.0)  # every slow client is connected and sending

    exported = 0
    for exporter in (
        HttpExporter(endpoint=f"{gw.http_url}/v1/traces", timeout=5),
        GrpcExporter(endpoint=gw.grpc_endpoint, insecure=True, timeout=5),
    ):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for i in range(25):
            attributes: dict[str, str | float] = {
                semconv.MODEL_NAME: "m",
                semconv.FEATURE_PREFIX + "x": float(i),
            }
            with provider.get_tracer("t").start_as_current_span("p", attributes=attributes):
                exported += 1
        provider.shutdown()
    accepted = {
        transport: gw.samples()[
            (f"{semconv.RECEIVER_ACCEPTED_SPANS}_total", frozenset({("transport", transport)}))
        ].value
        for transport in ("http", "grpc")
    }
    assert accepted == {"http": 25, "grpc": 25}
    # The slow bodies hold only what they sent: a few bytes each, not 16 MiB.
    assert gw.gateway.guard.inflight_bytes < 1024

    for client in bodies + headers:
        client.join(timeout=BODY_TIMEOUT_S + 2 * IDLE_TIMEOUT_S + 10)
    for client in bodies:
        assert client.answer.startswith(b"HTTP/1.1 408 "), client.answer[:100]
    for client in headers:
        assert client.answer == b""  # closed mid-header, no answer
        assert client.closed_after is not None and client.closed_after < 4 * IDLE_TIMEOUT_S + 2
    assert _refused(gw, "body_timeout") == SLOW_BODIES
    assert _refused(gw, "header_timeout") == SLOW_HEADERS
    assert gw.gateway.guard.inflight_bytes == 0


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_past_max_connections_a_request_gets_503_with_a_retry_hint_counted() -> None:
    """Three connections held open take every slot: the next request is told when to retry,
    and counted; once one is closed, the same request is accepted."""
    body = b"{}"
    request = (
        b"POST /v1/traces HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    config = loopback_config(limits={"max_connections": 3, "idle_timeout": "30s"})
    with running_gateway(config) as gw:
        port = gw.ports.http
        assert port is not None
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        time.sleep(0.3)  # accepted by the server before the next one arrives
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                extra.sendall(request)
                head, payload = _response(extra)
            assert head.startswith(b"HTTP/1.1 503")
            assert b"\r\nretry-after: 1" in head.lower()
            assert b"too many open connections" in payload
            assert _refused(gw, "too_many_connections") == 1
        finally:
            held.pop().close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
            again.sendall(request)
            assert again.recv(65536).startswith(b"HTTP/1.1 200")
        for sock in held:
            sock.close()
        assert _refused(gw, "too_many_connections") == 1
