"""Wiring: config → state, pipeline, receivers and admin server, on one asyncio loop.

The only module that knows every component. Everything that can fail on bad configuration
(reference profiles included) fails in `validation.check`, before anything starts; `serve`
runs one process, or hands `Gateway` to the worker pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from otelml.config import GatewayConfig, Tls
from otelml.gateway import admin, malloc
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.drift.history import History
from otelml.gateway.exporters.forwarding import build_senders
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.processors.redaction import Redactor
from otelml.gateway.receivers import otlp_grpc, otlp_http
from otelml.gateway.receivers.guard import Guard
from otelml.gateway.serving import (
    ConnectionLimits,
    HttpServer,
    add_grpc_port,
    bind,
    http_server,
    wait_for_signal,
)
from otelml.gateway.state.samples import RequestSamples
from otelml.gateway.state.store import FeatureStore
from otelml.gateway.validation import CheckedConfig, check
from otelml.gateway.workers import serve_workers

log = logging.getLogger("otelml.gateway")

#: A connection closed while its request header was still arriving (a slow client).
REASON_HEADER_TIMEOUT = "header_timeout"
REASON_TOO_MANY = "too_many_connections"


@dataclass(frozen=True)
class BoundPorts:
    grpc: int | None
    http: int | None
    admin: int | None


#: Where /metrics reads from: the gateway's own state, or several workers' merged.
Snapshot = Callable[[], Awaitable[GatewayState]]


class Gateway:
    def __init__(
        self,
        config: GatewayConfig | CheckedConfig,
        worker: int | None = None,
        forward: bool = True,
    ) -> None:
        """`forward=False` for a process that receives nothing (the parent of workers).

        Raises `ConfigError` for a config that was not checked yet and fails its check.
        """
        checked = check(config)
        config = checked.config
        models = checked.models
        malloc.tune()
        self.config = config
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
        self.pipeline = self.state.pipeline(self.senders, self.redactor)
        self.guard = Guard(
            config.auth.bearer_token.get_secret_value(),
            config.limits.max_inflight_bytes,
            config.limits.memory_limit,
        )
        self.pipeline.max_values = config.limits.max_request_values
        self.pipeline.charge = self.guard.charge_current
        self.pipeline.max_label_length = config.limits.max_label_length
        self._grpc: grpc.aio.Server | None = None
        self._http: list[HttpServer] = []
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
        otlp = self.config.receivers.otlp
        admin_socket = bind(self.config.admin) if serve_admin else None
        if receivers and http_socket is None and otlp.http is not None:
            http_socket = bind(otlp.http)
        grpc_port = await self._start_grpc(reuse_port) if receivers else None
        apps: list[tuple[object, socket.socket, Tls | None]] = []
        if admin_socket is not None:
            snapshot = admin_snapshot or self._own_state
            token = self.config.auth.admin_bearer_token.get_secret_value()
            admin_app = admin.create_app(
                snapshot, lambda: self._ready, self.config, bearer_token=token
            )
            apps.append((admin_app, admin_socket, None))
        if receivers and http_socket is not None:
            limits = self.config.limits
            receiver = otlp_http.create_app(
                self.pipeline, limits.max_request_bytes, self.guard, limits.body_timeout
            )
            apps.append((receiver, http_socket, otlp.http.tls if otlp.http else None))
        await self._start_http(apps)
        self.ports = BoundPorts(
            grpc=grpc_port,
            http=http_socket.getsockname()[1] if http_socket is not None and receivers else None,
            admin=admin_socket.getsockname()[1] if admin_socket is not None else None,
        )
        for sender in self.senders:
            sender.start()
        self._ready = True
        return self.ports

    async def _start_grpc(self, reuse_port: bool) -> int | None:
        endpoint = self.config.receivers.otlp.grpc
        if endpoint is None:
            return None
        self._grpc = otlp_grpc.create_server(
            self.pipeline,
            self.config.limits.max_request_bytes,
            reuse_port=reuse_port,
            guard=self.guard,
            max_connection_age=endpoint.max_connection_age,
            max_connection_age_grace=endpoint.max_connection_age_grace,
        )
        port = add_grpc_port(self._grpc, endpoint)
        await self._grpc.start()
        return port

    async def _start_http(self, apps: list[tuple[object, socket.socket, Tls | None]]) -> None:
        """Serve each app on its socket; returns once all listen (or re-raises a failure)."""
        limits = self.config.limits
        connections = ConnectionLimits(
            limits.max_connections,
            limits.idle_timeout,
            lambda: self.state.stats.refuse_request(otlp_http.TRANSPORT, REASON_HEADER_TIMEOUT),
            lambda: self.state.stats.refuse_request(otlp_http.TRANSPORT, REASON_TOO_MANY),
        )
        for app, sock, tls in apps:
            server = http_server(app, tls, connections)
            self._http.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not all(s.started for s in self._http):
            if any(t.done() for t in self._tasks):
                await asyncio.gather(*self._tasks)  # re-raises the server's startup error
            await asyncio.sleep(0.01)

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


async def serve(config: GatewayConfig | CheckedConfig) -> None:
    """Run until SIGINT/SIGTERM: one process, or `config.workers` workers behind shared ports."""
    checked = check(config)
    if checked.config.workers > 1:
        await serve_workers(checked, Gateway)
        return
    gateway = Gateway(checked)
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
