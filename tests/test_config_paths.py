"""Every relative path in a config resolves against the config file, never the working
directory: `--check` and the gateway agree wherever they are started from, and a queue is
found again after a restart from elsewhere."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from otelml import semconv
from tests import tls_certs
from tests.gateway.otlp_builders import traces
from tests.gateway_process import GatewayProcess
from tests.prometheus_server import free_port


def _config(directory: Path, http_port: int, sink_port: int) -> GatewayProcess:
    tls_certs.make(directory)
    tls = "{cert_file: server.pem, key_file: server.key, client_ca_file: ca.pem}"
    gateway = GatewayProcess.configure(
        directory,
        "exporters:\n"
        f"  traces: {{endpoint: 'https://127.0.0.1:{sink_port}', protocol: grpc,"
        " ca_file: ca.pem}\n"
        "queue: {directory: spool}\n",
    )
    text = gateway.config.read_text().replace(
        "http: {endpoint: '127.0.0.1:0'}", f"http: {{endpoint: '127.0.0.1:{http_port}'}}"
    )
    text = text.replace(
        f"grpc: {{endpoint: '127.0.0.1:{gateway.grpc_port}'}}",
        f"grpc: {{endpoint: '127.0.0.1:{gateway.grpc_port}', tls: {tls}}}",
    )
    gateway.config.write_text(text)
    return gateway


def test_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    http_port = free_port()
    gateway = _config(home, http_port, free_port())  # the destination is down: data stays
    check = subprocess.run(
        [sys.executable, "-m", "otelml.cli", "gateway", "--check", "-c", str(gateway.config)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    body = traces([{semconv.MODEL_NAME: "m", semconv.FEATURE_PREFIX + "x": 1.0}] * 5)
    for attempt in range(2):  # start, acknowledge, stop; then again from elsewhere
        process = subprocess.Popen(
            [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(gateway.config)],
            cwd=elsewhere if attempt == 0 else tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        gateway.process = process
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{gateway.admin_url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            queued = httpx.get(f"{gateway.admin_url}/metrics").text
            line = next(
                x for x in queued.splitlines() if x.startswith("otelml_exporter_queue_items{")
            )
            assert float(line.rsplit(" ", 1)[1]) == 5 * attempt  # found again on the restart
            response = httpx.post(
                f"http://127.0.0.1:{http_port}/v1/traces",
                content=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
        finally:
            process.terminate()
            process.wait(30)
    assert list((home / "spool").rglob("*.seg"))
    assert not (elsewhere / "spool").exists() and not (tmp_path / "spool").exists()
