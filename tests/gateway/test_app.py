"""The gateway's lifecycle: start, ready, stop; stop without start; config errors before binding."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from otelml.errors import ConfigError
from otelml.gateway.app import Gateway
from otelml.gateway.validation import check
from tests.conftest import loopback_config
from tests.gateway.otlp_builders import traces


def test_start_serves_every_port_and_stop_unreadies_first(tmp_path: Path) -> None:
    async def run() -> None:
        gateway = Gateway(check(loopback_config(queue={"directory": str(tmp_path)})))
        assert not gateway.ready
        ports = await gateway.start()
        assert gateway.ready and ports.grpc and ports.http and ports.admin
        async with httpx.AsyncClient(timeout=10) as client:
            sent = await client.post(
                f"http://127.0.0.1:{ports.http}/v1/traces",
                content=traces([{"ml.model.name": "m", "ml.feature.x": 1.0}]),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert sent.status_code == 200
            ready = await client.get(f"http://127.0.0.1:{ports.admin}/readyz")
            assert ready.status_code == 200
            metrics = await client.get(f"http://127.0.0.1:{ports.admin}/metrics")
            assert 'otelml_receiver_accepted_spans_total{transport="http"} 1' in metrics.text
        await gateway.stop(grace=1.0)
        assert not gateway.ready
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{ports.admin}/healthz", timeout=2)

    asyncio.run(run())


def test_stop_without_start_is_harmless() -> None:
    async def run() -> None:
        gateway = Gateway(loopback_config())
        await gateway.stop(grace=0.1)
        assert not gateway.ready

    asyncio.run(run())


def test_a_bad_config_fails_before_any_port_is_bound(tmp_path: Path) -> None:
    missing = tmp_path / "gone.json"
    missing.write_text("[]")
    config = loopback_config(models=[{"name": "m", "reference": str(missing)}])
    with pytest.raises(ConfigError):
        Gateway(config)
