"""Running the proxy: its port, its admin port (/metrics, /healthz), its tracer; start/stop.

`Proxy.start()` binds every socket before it returns, so a test (or the CLI) knows the ports;
`stop()` stops taking requests, lets the ones in flight finish, then flushes spans for at most
`flush_timeout` seconds (the gateway may be away: shutdown must not hang on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from otelml.config import Endpoint
from otelml.proxy.app import ProxyApp
from otelml.proxy.coalesce import CoalescingHttpToolsProtocol
from otelml.proxy.metrics import ProxyMetrics
from otelml.proxy.rules import Rules
from otelml.proxy.telemetry import max_span_attributes, otlp_exporter, tracer_provider


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    rules: Rules
    listen: str = "0.0.0.0:8080"
    #: host:port of /metrics and /healthz; None: no admin port.
    admin: str | None = "0.0.0.0:9465"
    #: OTLP endpoint of the gateway; None: from OTEL_EXPORTER_OTLP_* (SDK defaults).
    gateway: str | None = None
    #: Seconds to wait for the upstream's response headers (and between body chunks).
    timeout: float = 60.0
    flush_timeout: float = 5.0


@dataclass(frozen=True)
class BoundPorts:
    proxy: int
    admin: int | None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the owner of the loop decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(endpoint: str) -> socket.socket:
    parsed = Endpoint(endpoint=endpoint)
    family = socket.AF_INET6 if ":" in parsed.host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it a response written in two pieces waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((parsed.host, parsed.port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def admin_app(metrics: ProxyMetrics) -> Starlette:
    async def exposition(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), headers={"Content-Type": content_type})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/metrics", exposition),
            Route("/healthz", healthz),
            Route("/readyz", healthz),
        ]
    )


def _config(app: object, **kwargs: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="off",
        log_level="warning",
        access_log=False,
        # The upstream's own Date and Server headers pass through; uvicorn adds none.
        server_header=False,
        date_header=False,
        # X-Forwarded-* headers are the upstream's to read: the proxy passes them on as sent.
        proxy_headers=False,
        **kwargs,  # type: ignore[arg-type]
    )


class Proxy:
    """The proxy, its admin endpoint and its tracer, on the running event loop."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.metrics = ProxyMetrics()
        self.provider = tracer_provider(otlp_exporter(settings.gateway), self._exported)
        self.app = ProxyApp(
            settings.upstream,
            settings.rules,
            self.provider,
            self.metrics,
            max_attributes=max_span_attributes(),
            timeout=settings.timeout,
        )
        self._servers: list[tuple[_Server, asyncio.Task[None]]] = []

    def _exported(self, ok: bool, spans: int) -> None:
        (self.metrics.spans_exported if ok else self.metrics.spans_failed).inc(spans)

    async def start(self) -> BoundPorts:
        """Bind every port (all or none), then serve."""
        sockets = [_bind(self.settings.listen)]
        try:
            if self.settings.admin is not None:
                sockets.append(_bind(self.settings.admin))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        apps: list[object] = [self.app, admin_app(self.metrics)]
        for sock, app in zip(sockets, apps, strict=False):
            extra = {"http": CoalescingHttpToolsProtocol} if app is self.app else {}
            server = _Server(_config(app, timeout_keep_alive=75, **extra))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            self._servers.append((server, task))
        while not all(server.started for server, _ in self._servers):
            if any(task.done() for _, task in self._servers):
                for _, task in self._servers:
                    if task.done():
                        task.result()  # re-raise the reason it did not start
                raise RuntimeError("otelml proxy: a server stopped while starting")
            await asyncio.sleep(0.005)
        ports = [sock.getsockname()[1] for sock in sockets]
        return BoundPorts(proxy=ports[0], admin=ports[1] if len(ports) > 1 else None)

    async def stop(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            with contextlib.suppress(Exception):
                await task
        self._servers.clear()
        await self.app.aclose()
        timeout_ms = int(self.settings.flush_timeout * 1000)
        await asyncio.to_thread(self.provider.force_flush, timeout_ms)
        await asyncio.to_thread(self.provider.shutdown)

    def flush(self, timeout: float = 10.0) -> bool:
        """Export every span of the requests answered so far (tests), from any thread: a
        span ends just after its answer is sent, so first wait for those still ending."""
        deadline = time.monotonic() + timeout
        while self.app.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        remaining = max(deadline - time.monotonic(), 0.001)
        return bool(self.provider.force_flush(int(remaining * 1000)))


async def serve(settings: ProxySettings) -> None:
    """Run until SIGINT or SIGTERM (the CLI's entry point)."""
    # The span export thread encodes in Python: a 0.5 ms GIL switch interval (default 5 ms)
    # keeps it from holding the event loop up for whole milliseconds.
    sys.setswitchinterval(0.0005)
    proxy = Proxy(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ports = await proxy.start()
    # Everything loaded so far lives as long as the process: keep the collector from
    # walking it again and again (spans waiting for export make the older generations grow).
    gc.freeze()
    admin = f", admin on :{ports.admin}" if ports.admin is not None else ""
    print(
        f"otelml proxy: :{ports.proxy} → {settings.upstream}{admin}, "
        f"{len(settings.rules.routes)} route(s) with rules",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await proxy.stop()
