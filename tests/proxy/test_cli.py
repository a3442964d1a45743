"""`otelml proxy` as users start it: a process that binds, serves, and on SIGTERM finishes
its requests and flushes its spans before it exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import running_gateway
from tests.proxy.standin import StandIn, serve_in_thread

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proxy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_serves_and_flushes_on_sigterm() -> None:
    port, admin = _free_port(), _free_port()
    with serve_in_thread(StandIn()) as upstream, running_gateway() as gateway:
        with subprocess.Popen(
            [
                *(sys.executable, "-m", "otelml.cli", "proxy", "--upstream", upstream),
                *("-c", str(EXAMPLES / "tfserving-rules.yaml")),
                *("--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"),
                *("--gateway", f"http://{gateway.grpc_endpoint}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "60000"},  # only the exit flushes
        ) as process:
            try:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=1)
                        break
                    except httpx.TransportError:
                        assert process.poll() is None and time.monotonic() < deadline
                        time.sleep(0.1)
                body = {"instances": [{"age": 31, "income": 5.0, "country": "DE"}] * 3}
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/models/churn/versions/3:predict", json=body
                )
                assert response.status_code == 200
                process.send_signal(signal.SIGTERM)
                output, _ = process.communicate(timeout=30)
                assert process.returncode == 0, output
                assert f":{port} → {upstream}" in output
            finally:
                if process.poll() is None:
                    process.kill()
        samples = gateway.samples()
    labels = {"model": "churn", "model_version": "3", "feature": "age", "le": "+Inf"}
    assert samples[("otelml_feature_value_bucket", frozenset(labels.items()))].value == 3


def test_a_port_in_use_exits_1_before_serving() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                *(sys.executable, "-m", "otelml.cli", "proxy", "--upstream", "http://x:1"),
                *("-c", str(EXAMPLES / "fastapi-rules.yaml"), "--listen", f"127.0.0.1:{port}"),
                "--admin=",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "otelml proxy:" in result.stderr and "in use" in result.stderr
