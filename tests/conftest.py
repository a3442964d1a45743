"""Shared fixtures: a real gateway on loopback ephemeral ports, run on its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml.config import GatewayConfig, parse
from otelml.gateway.app import BoundPorts, Gateway

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def loopback_config(**overrides: Any) -> GatewayConfig:
    """A config whose receivers listen on ephemeral loopback ports."""
    data: dict[str, Any] = {
        "receivers": {
            "otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}}
        },
        "admin": {"endpoint": "127.0.0.1:0"},
    }
    data.update(overrides)
    return parse(data)


def forwarding_config(sink_endpoint: str, queue: Path, **overrides: Any) -> GatewayConfig:
    """A loopback gateway forwarding traces and logs over gRPC to one sink (Tempo and Loki)."""
    exporters = {
        "traces": {"endpoint": sink_endpoint, "protocol": "grpc"},
        "logs": {"endpoint": sink_endpoint, "protocol": "grpc"},
    }
    return loopback_config(exporters=exporters, queue={"directory": str(queue)}, **overrides)


@dataclass
class RunningGateway:
    gateway: Gateway
    ports: BoundPorts
    loop: asyncio.AbstractEventLoop

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.admin}"

    def scrape(self, openmetrics: bool = True) -> str:
        headers = {"Accept": OPENMETRICS_ACCEPT} if openmetrics else {}
        response = httpx.get(f"{self.admin_url}/metrics", headers=headers, timeout=10)
        response.raise_for_status()
        return response.text

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], Any]:
        """Every sample of a strictly parsed OpenMetrics scrape, keyed by (name, labels)."""
        out = {}
        for family in text_string_to_metric_families(self.scrape()):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample
        return out


@contextmanager
def running_gateway(config: GatewayConfig | None = None) -> Iterator[RunningGateway]:
    config = config or loopback_config()
    gateway = Gateway(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()
    ports = asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=30)

    async def start_drift() -> None:
        gateway.start_drift()

    asyncio.run_coroutine_threadsafe(start_drift(), loop).result(timeout=30)
    try:
        yield RunningGateway(gateway, ports, loop)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(grace=1.0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    with running_gateway() as running:
        yield running
