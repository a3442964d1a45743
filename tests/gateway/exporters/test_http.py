"""The exporters' HTTP/1.1 client against a real socket server: bodies, keep-alive, closed
connections, chunked answers, timeouts, TLS; and the OTLP/HTTP transport's outcomes."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from otelml.gateway.exporters.http import HttpConnection, HttpError
from otelml.gateway.exporters.otlp import REJECTED, HttpTransport
from otelml.gateway.exporters.sender import Outcome
from tests import tls_certs


class Server(socketserver.ThreadingTCPServer):
    """Reads HTTP/1.1 POSTs with a Content-Length; answers as `mode` says."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.mode = "ok"
        self.status = 200
        self.answer = b""
        self.headers: dict[str, str] = {}
        self.bodies: list[bytes] = []
        self.heads: list[dict[str, str]] = []
        self.connections = 0
        self.tls = tls
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        self.connections += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def handle(self) -> None:
        try:
            while self._one():
                pass
        except (OSError, ssl.SSLError):
            pass

    def _one(self) -> bool:
        line = self.rfile.readline()
        if not line:
            return False
        head = {}
        while (header := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        body = self.rfile.read(int(head["content-length"]))
        server = self.server
        server.heads.append(head)
        server.bodies.append(body)
        if server.mode == "silent":
            time.sleep(5)
            return False
        if server.mode == "close_after":  # answers, then closes without saying so
            self._answer()
            return False
        if server.mode == "chunked_close":
            self.wfile.write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                b"4\r\nbusy\r\n0\r\n\r\n"
            )
            return False
        self._answer()
        return True

    def _answer(self) -> None:
        answer = self.server.answer
        head = f"HTTP/1.1 {self.server.status} X\r\nContent-Length: {len(answer)}\r\n"
        for name, value in self.server.headers.items():
            head += f"{name}: {value}\r\n"
        self.wfile.write(head.encode() + b"\r\n" + answer)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.shutdown()
    running.server_close()


def test_parts_arrive_as_one_body_on_one_kept_alive_connection(server: Server) -> None:
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB: more than one sendmsg takes
    parts = [b"head-", big, b"", b"-tail"]

    async def scenario() -> list[int]:
        connection = HttpConnection(
            f"http://127.0.0.1:{server.port}/v1/traces", {"Authorization": "Bearer t"}, 10
        )
        statuses = [(await connection.post(parts)).status for _ in range(5)]
        connection.close()
        return statuses

    assert asyncio.run(scenario()) == [200] * 5
    assert server.connections == 1
    assert server.bodies == [b"".join(parts)] * 5
    assert server.heads[0]["authorization"] == "Bearer t"
    assert server.heads[0]["host"] == f"127.0.0.1:{server.port}"


def test_a_connection_the_server_closed_while_idle_is_replaced_unseen(server: Server) -> None:
    server.mode = "close_after"

    async def scenario() -> list[int]:
        connection = HttpConnection(f"http://127.0.0.1:{server.port}/x", {}, 10)
        statuses = []
        for i in range(3):
            statuses.append((await connection.post([f"request {i}".encode()])).status)
            await asyncio.sleep(0.05)  # the server has closed by now
        connection.close()
        return statuses

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert server.bodies == [b"request 0", b"request 1", b"request 2"]
    assert server.connections == 3


def test_a_chunked_answer_that_closes_the_connection(server: Server) -> None:
    server.mode = "chunked_close"

    async def scenario() -> tuple[int, str, bytes, int]:
        connection = HttpConnection(f"http://127.0.0.1:{server.port}/x", {}, 10)
        first = await connection.post([b"one"])
        second = await connection.post([b"two"])  # on a new connection
        connection.close()
        return first.status, first.headers["retry-after"], first.body, second.status

    assert asyncio.run(scenario()) == (503, "3", b"busy", 503)
    assert server.connections == 2


def test_no_answer_in_time_is_a_timeout(server: Server) -> None:
    server.mode = "silent"

    async def scenario() -> tuple[str, float]:
        connection = HttpConnection(f"http://127.0.0.1:{server.port}/x", {}, 0.3)
        started = time.monotonic()
        with pytest.raises(HttpError) as error:
            await connection.post([b"x"])
        connection.close()
        return error.value.reason, time.monotonic() - started

    reason, elapsed = asyncio.run(scenario())
    assert reason == "timeout"
    assert 0.25 < elapsed < 2


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there

    async def scenario() -> str:
        connection = HttpConnection(f"http://127.0.0.1:{port}/x", {}, 2)
        with pytest.raises(HttpError) as error:
            await connection.post([b"x"])
        return error.value.reason

    assert asyncio.run(scenario()) == "connect"


def test_https_with_the_destinations_ca_and_without_it(tmp_path: Path) -> None:
    certificates = tls_certs.make(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    server = Server(tls=context)
    big = b"z" * (1 << 20)

    async def scenario() -> tuple[list[int], str]:
        trusted = HttpConnection(
            f"https://127.0.0.1:{server.port}/v1/logs", {}, 10, certificates.ca
        )
        statuses = [(await trusted.post([b"a", big])).status for _ in range(2)]
        trusted.close()
        untrusted = HttpConnection(f"https://127.0.0.1:{server.port}/v1/logs", {}, 10)
        with pytest.raises(HttpError) as error:
            await untrusted.post([b"a"])
        return statuses, error.value.reason

    try:
        statuses, reason = asyncio.run(scenario())
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == [200, 200]
    assert server.bodies[:2] == [b"a" + big] * 2
    assert reason == "tls"


def test_otlp_http_partial_success_counts_the_rejected_spans(server: Server) -> None:
    server.headers = {"Content-Type": "application/x-protobuf"}
    server.answer = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=3, error_message="too old")
    ).SerializeToString()
    transport = HttpTransport(f"http://127.0.0.1:{server.port}", "spans", {}, 5)

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        partial = await transport.send([b"\x0a\x00"])
        server.answer = b""
        whole = await transport.send([b"\x0a\x00"])
        await transport.close()
        assert partial.ok and whole.ok
        return partial.dropped, whole.dropped

    assert asyncio.run(scenario()) == ({REJECTED: 3}, {})
    assert server.heads[0]["content-type"] == "application/x-protobuf"
    assert server.bodies == [b"\x0a\x00"] * 2


@pytest.mark.parametrize(
    ("status", "retryable", "reason"),
    [(503, True, "http_503"), (429, True, "http_429"), (400, False, "http_400")],
)
def test_otlp_http_errors(server: Server, status: int, retryable: bool, reason: str) -> None:
    server.status, server.headers = status, {"Retry-After": "2"}
    transport = HttpTransport(f"http://127.0.0.1:{server.port}/", "spans", {}, 5)

    async def scenario() -> Outcome:
        outcome = await transport.send([b"\x0a\x00"])
        await transport.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, retryable, reason)
    assert outcome.retry_after == (2.0 if retryable else None)
    assert server.bodies == [b"\x0a\x00"]


def test_otlp_http_nothing_listening_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = HttpTransport(f"http://127.0.0.1:{port}", "log_records", {}, 2)
    outcome = asyncio.run(transport.send([b"\x0a\x00"]))
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, True, "connect")
