"""The proxy as a real server on loopback, on its own event loop thread (like the gateway's
`running_gateway`), for tests and the bench."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from otelml.proxy import BoundPorts, Proxy, ProxySettings, parse


@dataclass
class RunningProxy:
    proxy: Proxy
    ports: BoundPorts
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.proxy}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.admin}"

    def flush(self) -> None:
        assert self.proxy.flush(10.0)

    def counters(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The proxy's own /metrics, strictly parsed: (name, labels) → value."""
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        response = httpx.get(
            f"{self.admin_url}/metrics",
            headers={"Accept": "application/openmetrics-text;version=1.0.0"},
            timeout=10,
        )
        response.raise_for_status()
        out = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

    def failures(self, route: str) -> dict[str, float]:
        return {
            dict(labels)["reason"]: value
            for (name, labels), value in self.counters().items()
            if name == "otelml_proxy_extraction_failures_total" and ("route", route) in labels
        }


@contextmanager
def running_proxy(
    upstream: str,
    rules: dict[str, Any] | None = None,
    gateway: str | None = None,
    timeout: float = 60.0,
) -> Iterator[RunningProxy]:
    settings = ProxySettings(
        upstream=upstream,
        rules=parse(rules or {}),
        listen="127.0.0.1:0",
        admin="127.0.0.1:0",
        gateway=gateway,
        timeout=timeout,
        flush_timeout=2.0,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="proxy-loop", daemon=True)
    thread.start()

    async def create() -> Proxy:
        return Proxy(settings)

    proxy = asyncio.run_coroutine_threadsafe(create(), loop).result(timeout=30)
    ports = asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=30)
    try:
        yield RunningProxy(proxy, ports, loop)
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
