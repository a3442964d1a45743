"""A real Prometheus (Debian's package) started on a free loopback port, for integration tests.

When the binary is missing the tests skip — unless OTELML_REQUIRE_PROMETHEUS or CI is set
(`make test` sets it), where a missing Prometheus is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        message = "prometheus binary not found (make test installs Debian's prometheus package)"
        if os.environ.get("OTELML_REQUIRE_PROMETHEUS") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]  # type: ignore[no-any-return]

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.url}/api/v1/query_exemplars",
            params={"query": expr, "start": start, "end": end},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["data"]  # type: ignore[no-any-return]

    def wait_for(self, expr: str, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll a query until `predicate(result)` holds; returns the last result."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {expr!r}; last result {result}")


@contextmanager
def running_prometheus(
    tmp_path: Path, targets: list[str], rule_files: list[Path] | None = None
) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    port = free_port()
    rules = "".join(f"  - {path}\n" for path in rule_files or [])
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n  - job_name: otelml\n    static_configs:\n"
        + f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--web.enable-remote-write-receiver",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "prometheus did not start:\n" + (tmp_path / "prometheus.log").read_text()
                )
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
