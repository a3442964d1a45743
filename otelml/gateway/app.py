"""Wiring: config → state, pipeline, receivers and admin server, on one asyncio loop.

The only module that knows every component. Everything that can fail on bad configuration
(reference profiles included) fails in `Gateway.__init__`, before any port is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import grpc
import uvicorn

from otelml.config import Endpoint, GatewayConfig, Tls
from otelml.errors import ConfigError
from otelml.gateway import admin, malloc
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.exporters.forwarding import build_senders
from otelml.gateway.history import History
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.pipeline import Pipeline
from otelml.gateway.processors.redaction import Redactor
from otelml.gateway.receivers import otlp_grpc, otlp_http
from otelml.gateway.receivers.guard import Guard
from otelml.gateway.samples import RequestSamples
from otelml.gateway.state import GatewayState
from otelml.gateway.store import FeatureStore, ModelProfile
from otelml.profile import ProfileError
from otelml.profile import load as load_profile

log = logging.getLogger("otelml.gateway")


@dataclass(frozen=True)
class BoundPorts:
    grpc: int | None
    http: int | None
    admin: int | None


#: Where /metrics reads from: the gateway's own state, or several workers' merged.
Snapshot = Callable[[], Awaitable[GatewayState]]


def load_models(config: GatewayConfig) -> list[ModelProfile]:
    """Load every configured reference profile; problems are config errors with their path."""
    problems: list[str] = []
    models: list[ModelProfile] = []
    for index, model in enumerate(config.models):
        profile = None
        if model.reference is not None:
            try:
                profile = load_profile(model.reference)
            except ProfileError as exc:
                problems.append(f"models.{index}.reference: {exc}")
        models.append(ModelProfile(model.name, model.version, profile, tuple(model.segments)))
    if problems:
        raise ConfigError(problems)
    return models


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


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway owns SIGTERM (graceful shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(
        self, config: GatewayConfig, worker: int | None = None, forward: bool = True
    ) -> None:
        """`forward=False` for a process that receives nothing (the parent of workers)."""
        malloc.tune()
        self.config = config
        models = load_models(config)
        self.state = GatewayState.create(
            max_series=config.limits.max_series,
            models=models,
            max_categories=config.limits.max_categories,
        )
        ui = config.ui
        self.state.samples = RequestSamples(ui.sample_rows, ui.samples_per_bucket)
        self.state.history = History(ui.history, ui.history_points)
        if config.models:
            self.state.drift = DriftEngine(config.models, models)
            self.state.drift.on_step.append(self.state.history.record)
        if any(m.ground_truth is not None for m in config.models):
            self.state.ground_truth = GroundTruthTracker(config.models)
        self._drift_task: asyncio.Task[None] | None = None
        self._performance_due = 0.0
        self.senders = build_senders(config, worker) if forward else []
        for sender in self.senders:
            self.state.exporters[sender.name] = sender.stats
        redaction = config.redaction
        self.redactor = (
            Redactor(redaction.allow_keys, redaction.patterns, redaction.action)
            if redaction.enabled
            else None
        )
        self.state.redaction = self.redactor
        self.pipeline = Pipeline.for_state(self.state, self.senders, self.redactor)
        self.guard = Guard(
            config.auth.bearer_token,
            config.limits.max_inflight_bytes,
            config.limits.memory_limit,
        )
        self._grpc: grpc.aio.Server | None = None
        self._http: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        self.ports: BoundPorts | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(
        self,
        *,
        receivers: bool = True,
        admin_snapshot: Snapshot | None = None,
        serve_admin: bool = True,
        http_socket: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> BoundPorts:
        """Bind and start. Workers pass `serve_admin=False`, an inherited `http_socket` and
        `reuse_port=True`; the merging parent passes `receivers=False` and its own snapshot."""
        limits = self.config.limits
        otlp = self.config.receivers.otlp
        admin_socket = bind(self.config.admin) if serve_admin else None
        if receivers and http_socket is None and otlp.http is not None:
            http_socket = bind(otlp.http)
        grpc_port = None
        if receivers and otlp.grpc is not None:
            self._grpc = otlp_grpc.create_server(
                self.pipeline, limits.max_request_bytes, reuse_port=reuse_port, guard=self.guard
            )
            tls = otlp.grpc.tls
            if tls is None:
                grpc_port = self._grpc.add_insecure_port(otlp.grpc.endpoint)
            else:
                client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
                credentials = grpc.ssl_server_credentials(
                    [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
                    root_certificates=client_ca,
                    require_client_auth=client_ca is not None,
                )
                grpc_port = self._grpc.add_secure_port(otlp.grpc.endpoint, credentials)
            if grpc_port == 0:
                raise OSError(f"cannot listen on {otlp.grpc.endpoint}")
            await self._grpc.start()
        apps: list[tuple[object, socket.socket, Tls | None]] = []
        if admin_socket is not None:
            snapshot = admin_snapshot or self._own_state
            admin_app = admin.create_app(snapshot, lambda: self._ready, self.config)
            apps.append((admin_app, admin_socket, None))
        if receivers and http_socket is not None:
            apps.append(
                (
                    otlp_http.create_app(self.pipeline, limits.max_request_bytes, self.guard),
                    http_socket,
                    otlp.http.tls if otlp.http is not None else None,
                )
            )
        for app, sock, tls in apps:
            config = uvicorn.Config(
                app,  # type: ignore[arg-type]
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_keep_alive=30,
                **_uvicorn_tls(tls),  # type: ignore[arg-type]
            )
            config.load()
            if config.ssl is not None:
                config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            server = _Server(config)
            self._http.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not all(s.started for s in self._http):
            if any(t.done() for t in self._tasks):
                await asyncio.gather(*self._tasks)  # re-raises the server's startup error
            await asyncio.sleep(0.01)
        self.ports = BoundPorts(
            grpc=grpc_port,
            http=http_socket.getsockname()[1] if http_socket is not None and receivers else None,
            admin=admin_socket.getsockname()[1] if admin_socket is not None else None,
        )
        for sender in self.senders:
            sender.start()
        self._ready = True
        return self.ports

    def start_drift(self, source: Callable[[], Awaitable[FeatureStore]] | None = None) -> None:
        """Evaluate drift every step on `source()` (default: this gateway's own counts)."""
        engine = self.state.drift
        if engine is None or self._drift_task is not None:
            return

        async def own() -> FeatureStore:
            return self.state.store

        async def loop() -> None:
            while True:
                store = await (source or own)()
                engine.evaluate(store, time.monotonic())
                self._record_performance(engine.step_s)
                await asyncio.sleep(min(engine.step_s, 1.0))

        self._drift_task = asyncio.create_task(loop())

    def _record_performance(self, step_s: float) -> None:
        """Once per step, the performance of every model into the UI's history."""
        tracker, history = self.state.ground_truth, self.state.history
        now = time.monotonic()
        if tracker is None or history is None or now < self._performance_due:
            return
        self._performance_due = now + step_s
        history.record_performance(tracker, step_s)

    async def _own_state(self) -> GatewayState:
        self.refresh_exporters()
        return self.state

    def refresh_exporters(self) -> None:
        """Queue gauges are read from the queues when the state is read."""
        for sender in self.senders:
            sender.snapshot()

    async def stop(self, grace: float = 5.0) -> None:
        """Readiness false first, then stop accepting, then let in-flight requests finish."""
        self._ready = False
        if self._drift_task is not None:
            self._drift_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drift_task
            self._drift_task = None
        if self._grpc is not None:
            await self._grpc.stop(grace)
        for server in self._http:
            server.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Undelivered requests stay in the queues on disk: the next start sends them.
        for sender in self.senders:
            await sender.stop()
        self._http.clear()


async def serve(config: GatewayConfig) -> None:
    """Run until SIGINT/SIGTERM: one process, or `config.workers` workers behind shared ports."""
    if config.workers > 1:
        from otelml.gateway.workers import serve_workers

        await serve_workers(config)
        return
    gateway = Gateway(config)
    ports = await gateway.start()
    gateway.start_drift()
    log.warning(
        "otelml gateway listening: OTLP gRPC :%s, OTLP HTTP :%s, admin :%s",
        ports.grpc,
        ports.http,
        ports.admin,
    )
    await wait_for_signal()
    await gateway.stop()


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
