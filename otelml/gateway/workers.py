"""Several worker processes behind the same receiver ports, one merged /metrics.

Python runs one core per process, so the gateway scales on one machine with processes:
- each worker runs the receivers and its own pipeline and state (nothing shared while counting);
- OTLP/HTTP: the parent binds the socket once and the forked workers accept on it;
  OTLP/gRPC: every worker binds the same port with SO_REUSEPORT. The kernel spreads
  connections, so a single long-lived client connection stays on one worker — many clients
  (or an OpenTelemetry Collector's loadbalancing exporter) spread the load;
- the parent serves the admin port: on each scrape it asks every worker for a snapshot of its
  state, taken on the worker's event loop (never half-updated), and merges them — counts add,
  exemplars keep the newest — into one consistent exposition, exactly what the same traffic on
  one process would have produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.serving import bind, wait_for_signal
from otelml.gateway.state.store import FeatureStore
from otelml.gateway.validation import CheckedConfig

log = logging.getLogger("otelml.gateway")


class _Ports(Protocol):
    @property
    def grpc(self) -> int | None: ...

    @property
    def admin(self) -> int | None: ...


class WorkerGateway(Protocol):
    """What the pool runs in each worker and in the parent (`app.Gateway` is one)."""

    state: GatewayState

    async def start(
        self,
        *,
        receivers: bool = True,
        admin_snapshot: Callable[[], Awaitable[GatewayState]] | None = None,
        serve_admin: bool = True,
        http_socket: socket.socket | None = None,
        reuse_port: bool = False,
    ) -> _Ports: ...

    def start_drift(self, source: Callable[[], Awaitable[FeatureStore]] | None = None) -> None: ...

    def refresh_exporters(self) -> None: ...

    async def stop(self, grace: float = 5.0) -> None: ...


class GatewayFactory(Protocol):
    def __call__(
        self, config: CheckedConfig, worker: int | None = None, forward: bool = True
    ) -> WorkerGateway: ...


_SNAPSHOT = "snapshot"
_STOP = "stop"


def _worker_main(
    config: CheckedConfig,
    factory: GatewayFactory,
    http_socket: socket.socket | None,
    conn: Connection,
    index: int,
) -> None:
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_worker(config, factory, http_socket, conn, index))


async def _worker(
    config: CheckedConfig,
    factory: GatewayFactory,
    http_socket: socket.socket | None,
    conn: Connection,
    index: int,
) -> None:
    gateway = factory(config, worker=index)
    ports = await gateway.start(serve_admin=False, http_socket=http_socket, reuse_port=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def snapshot() -> bytes:
        gateway.refresh_exporters()
        return pickle.dumps(gateway.state, protocol=pickle.HIGHEST_PROTOCOL)

    def listen() -> None:
        conn.send(("ready", ports.grpc))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = _STOP  # the parent is gone
            if message == _SNAPSHOT:
                conn.send_bytes(asyncio.run_coroutine_threadsafe(snapshot(), loop).result())
            else:
                loop.call_soon_threadsafe(stop.set)
                return

    threading.Thread(target=listen, name="otelml-worker-control", daemon=True).start()
    await stop.wait()
    await gateway.stop()


class WorkerPool:
    """Starts the workers (by fork, before the parent runs any loop or server) and merges them."""

    def __init__(self, checked: CheckedConfig, factory: GatewayFactory) -> None:
        self.checked = checked
        self.config = checked.config
        self.factory = factory
        self._processes: list[Any] = []
        self._conns: list[Connection] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        otlp = self.config.receivers.otlp
        http_socket = bind(otlp.http) if otlp.http is not None else None
        for index in range(self.config.workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(self.checked, self.factory, http_socket, child_end, index),
                name="otelml-worker",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._processes.append(process)
            self._conns.append(parent_end)
        for conn, process in zip(self._conns, self._processes, strict=True):
            if not conn.poll(60):
                raise OSError(f"worker {process.pid} did not start")
            conn.recv()
        if http_socket is not None:
            http_socket.close()  # the workers hold it now

    def snapshot(self) -> GatewayState:
        """Every worker's state, merged into one."""
        limits = self.config.limits
        merged = GatewayState.create(limits.max_series, self.checked.models, limits.max_categories)
        with self._lock:  # one scrape at a time per pipe
            for conn in self._conns:
                conn.send(_SNAPSHOT)
                merged.merge(pickle.loads(conn.recv_bytes()))
        return merged

    def stop(self, timeout: float = 15.0) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(_STOP)
        for process in self._processes:
            process.join(timeout)
            if process.is_alive():
                process.terminate()


async def serve_workers(checked: CheckedConfig, factory: GatewayFactory) -> None:
    """Fork the workers, then serve the merged admin port (and run drift) in this process."""
    config = checked.config
    pool = WorkerPool(checked, factory)
    pool.start()
    parent = factory(checked, forward=False)
    loop = asyncio.get_running_loop()

    async def merged() -> GatewayState:
        state = await loop.run_in_executor(None, pool.snapshot)
        state.drift = parent.state.drift  # verdicts live in the parent, over merged counts
        state.history = parent.state.history
        return state

    async def merged_store() -> FeatureStore:
        state = await loop.run_in_executor(None, pool.snapshot)
        # The performance history is recorded from the parent's tracker after each step: the
        # merged joins of every worker, not the parent's own (it joins nothing).
        parent.state.ground_truth = state.ground_truth
        return state.store

    try:
        ports = await parent.start(receivers=False, admin_snapshot=merged)
        parent.start_drift(merged_store)
        log.warning(
            "otelml gateway: %d workers on OTLP gRPC %s / HTTP %s, merged admin :%s",
            config.workers,
            config.receivers.otlp.grpc.endpoint if config.receivers.otlp.grpc else "-",
            config.receivers.otlp.http.endpoint if config.receivers.otlp.http else "-",
            ports.admin,
        )
        await wait_for_signal()
    finally:
        await parent.stop()
        await loop.run_in_executor(None, pool.stop)
