"""The gateway as its own process (`otelml gateway -c FILE`): crash, soak and worker tests."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.prometheus_server import free_port


@dataclass
class GatewayProcess:
    config: Path
    grpc_port: int
    admin_port: int
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def configure(cls, directory: Path, extra: str = "") -> GatewayProcess:
        """A config on fixed free loopback ports (HTTP on an ephemeral one), plus `extra` YAML."""
        grpc_port, admin_port = free_port(), free_port()
        config = directory / "gateway.yaml"
        config.write_text(
            "receivers:\n  otlp:\n"
            f"    grpc: {{endpoint: '127.0.0.1:{grpc_port}'}}\n"
            "    http: {endpoint: '127.0.0.1:0'}\n"
            f"admin: {{endpoint: '127.0.0.1:{admin_port}'}}\n" + extra
        )
        return cls(config, grpc_port, admin_port)

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 60.0) -> subprocess.Popen[bytes]:
        """Start and wait until /readyz answers 200."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.admin_url}/readyz").status_code == 200:
                    return self.process
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, "the gateway exited"
            assert time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
