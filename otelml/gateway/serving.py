"""Listening sockets, HTTP and gRPC servers, and the signals that stop them.

What the gateway process and its workers share: binding before serving (so a worker can
inherit a socket), uvicorn without its own signal handlers (the gateway owns SIGTERM), TLS
1.2+ on every receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import uvicorn

from otelml.config import Endpoint, ReceiverEndpoint, Tls


def bind(endpoint: Endpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # with proto 0 every small answer waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {endpoint.endpoint}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def add_grpc_port(server: grpc.aio.Server, endpoint: ReceiverEndpoint) -> int:
    """Listen on `endpoint` (with its TLS, if any); the port bound."""
    tls = endpoint.tls
    if tls is None:
        port: int = server.add_insecure_port(endpoint.endpoint)
    else:
        client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port(endpoint.endpoint, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {endpoint.endpoint}")
    return port


def _uvicorn_tls(tls: Tls | None) -> dict[str, object]:
    if tls is None:
        return {}
    options: dict[str, object] = {
        "ssl_certfile": str(tls.cert_file),
        "ssl_keyfile": str(tls.key_file),
    }
    if tls.client_ca_file is not None:
        options["ssl_ca_certs"] = str(tls.client_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


class HttpServer(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway owns SIGTERM (graceful shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class ConnectionLimits:
    """What bounds an HTTP server's connections: how many, and how long one may idle."""

    max_connections: int = 1000
    #: Seconds with no request in progress (idle, or a request header still arriving).
    idle_timeout: float = 30.0
    #: Called when a connection is closed in the middle of a request header (counted).
    on_stalled: Callable[[], None] = lambda: None
    #: Called for each request answered 503 because `max_connections` are open (counted).
    on_too_many: Callable[[], None] = lambda: None


#: Seconds a client is told to wait when every connection slot is taken.
BUSY_RETRY_AFTER = 1


def _capped(app: Any, state: Any, limits: ConnectionLimits) -> Any:
    """The app behind a cap of `max_connections` open connections and requests in flight:
    past it, 503 with Retry-After, counted. (uvicorn's own `limit_concurrency` answers a bare
    503 without a retry hint, uncounted.) `state` is the server's: its live connections and
    request tasks, this request's own task among them."""
    limit = limits.max_connections
    body = b'{"message": "too many open connections: retry later"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(BUSY_RETRY_AFTER).encode()),
    ]

    async def capped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (len(state.connections) > limit or len(state.tasks) > limit):
            limits.on_too_many()
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return capped


def _idle_closing(base: type[Any], limits: ConnectionLimits) -> type[Any]:
    """uvicorn's protocol, closing a connection that has had no request in progress for
    `idle_timeout` to 2 × `idle_timeout` seconds — uvicorn's keep-alive timer alone never
    fires before a first request, nor while a request header trickles in byte by byte."""

    class IdleClosing(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._otelml_seen: object = None
            self._otelml_data = False
            self._otelml_timer = self.loop.call_later(limits.idle_timeout, self._otelml_check)

        def data_received(self, data: bytes) -> None:
            self._otelml_data = True
            super().data_received(data)

        def _otelml_check(self) -> None:
            if self.transport.is_closing():
                return  # answered and closing (a 408, say): not a stalled request
            cycle = self.cycle
            busy = cycle is not None and not cycle.response_complete
            if not busy and cycle is self._otelml_seen:
                if self._otelml_data:
                    limits.on_stalled()
                self.transport.close()
                return
            self._otelml_seen, self._otelml_data = cycle, False
            self._otelml_timer = self.loop.call_later(limits.idle_timeout, self._otelml_check)

        def connection_lost(self, exc: Exception | None) -> None:
            self._otelml_timer.cancel()
            super().connection_lost(exc)

    return IdleClosing


def http_server(app: object, tls: Tls | None, limits: ConnectionLimits | None = None) -> HttpServer:
    """An HTTP/1.1 server for an ASGI app, TLS 1.2+ when `tls` is given; not started.

    With `limits`: requests past `max_connections` open connections answered 503 with
    Retry-After (counted), idle ones closed (slow clients cannot hold connections open)."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=round(limits.idle_timeout) if limits else 30,
        **_uvicorn_tls(tls),  # type: ignore[arg-type]
    )
    config.load()
    if limits is not None:
        config.http_protocol_class = _idle_closing(config.http_protocol_class, limits)
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    server = HttpServer(config)
    if limits is not None:  # each connection's protocol takes the app from the config
        config.loaded_app = _capped(config.loaded_app, server.server_state, limits)
    return server


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
