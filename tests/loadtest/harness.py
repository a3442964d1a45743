"""A load test as a user runs it: the example's own train.py, its gateway.yaml on free ports
(short drift windows), the real service, and `locust -f <example>/locustfile.py --headless`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.conftest import OPENMETRICS_ACCEPT
from tests.gateway_process import GatewayProcess
from tests.prometheus_server import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
MOVED = {"bmi", "sex"}
#: The run: 5 s warm-up, 20 s normal, 20 s drift; batch calls of 4 rows, so the rows sent
#: follow from locust's own request counts.
RUN_TIME, WARMUP, DRIFT_AT, BATCH_SIZE = 45, 5, 25, 4


@dataclass
class ExampleGateway:
    """The example's gateway.yaml in `directory` (beside train.py's outputs) on free ports."""

    process: GatewayProcess
    http_port: int

    @classmethod
    def start(
        cls, example: str, directory: Path, monkeypatch: pytest.MonkeyPatch
    ) -> ExampleGateway:
        subprocess.run(
            [sys.executable, str(EXAMPLES / example / "train.py"), str(directory)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        shutil.copy(EXAMPLES / example / "gateway.yaml", directory / "gateway.yaml")
        grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
        for name, value in {
            "OTELML_GRPC_PORT": grpc_port,
            "OTELML_HTTP_PORT": http_port,
            "OTELML_ADMIN_PORT": admin_port,
            "OTELML_WINDOW": "10s",
            "OTELML_STEP": "2s",
            "OTELML_QUEUE": directory / "queue",
        }.items():
            monkeypatch.setenv(name, str(value))
        process = GatewayProcess(directory / "gateway.yaml", grpc_port, admin_port)
        process.start()
        return cls(process, http_port)

    @property
    def otlp_grpc(self) -> str:
        return f"http://{self.process.grpc_endpoint}"

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of a strictly parsed OpenMetrics scrape, for model diabetes or none."""
        response = httpx.get(
            f"{self.process.admin_url}/metrics", headers={"Accept": OPENMETRICS_ACCEPT}, timeout=10
        )
        response.raise_for_status()
        out = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.labels.get("model", "diabetes") == "diabetes":
                    key = (sample.name, frozenset(sample.labels.items()))
                    out[key] = float(sample.value)
        return out

    def stop(self) -> None:
        self.process.kill()


@dataclass
class LocustRun:
    returncode: int
    output: str
    verdict: dict[str, Any]
    #: locust's own final statistics: request name → (requests, failures)
    stats: dict[str, tuple[int, int]]
    #: locust's history: (unix time, total requests so far)
    history: list[tuple[float, int]]

    @property
    def rows_by_locust(self) -> int:
        """Rows sent, from locust's request counts alone."""
        return self.stats["/predict"][0] + BATCH_SIZE * self.stats["/predict_batch"][0]


def run_locust(
    example: str,
    host: str,
    gateway: ExampleGateway,
    directory: Path,
    during: Callable[[], None] | None = None,
) -> LocustRun:
    """`locust --headless` of the example's locustfile, strict; `during()` runs meanwhile."""
    verdict = directory / "verdict.json"
    prefix = directory / "locust"
    command = [
        *(sys.executable, "-m", "locust", "-f", str(EXAMPLES / example / "locustfile.py")),
        *("--host", host, "--headless", "-u", "5", "-r", "5", "-t", f"{RUN_TIME}s"),
        *("--otelml-warmup", f"{WARMUP}s", "--otelml-drift-at", f"{DRIFT_AT}s"),
        *("--otelml-batch-size", str(BATCH_SIZE), "--otelml-poll", "1", "--otelml-seed", "13"),
        *("--otelml-metrics-url", f"{gateway.process.admin_url}/metrics"),
        *("--otelml-ground-truth-url", f"http://127.0.0.1:{gateway.http_port}/v1/ground_truth"),
        *("--otelml-training-csv", str(directory / "training.csv")),
        *("--otelml-strict", "--otelml-verdict-json", str(verdict)),
        *("--csv", str(prefix), "--json-file", str(prefix)),  # CSV: the history; JSON: final
    ]
    locust = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=directory
    )
    try:
        if during is not None:
            during()
        output, _ = locust.communicate(timeout=RUN_TIME + 60)
    finally:
        if locust.poll() is None:
            locust.kill()
            locust.communicate()
    assert verdict.exists(), output
    stats = {
        entry["name"]: (int(entry["num_requests"]), int(entry["num_failures"]))
        for entry in json.loads(Path(f"{prefix}.json").read_text())
    }
    with open(f"{prefix}_stats_history.csv", newline="") as file:
        history = [
            (float(row["Timestamp"]), int(row["Total Request Count"]))
            for row in csv.DictReader(file)
            if row["Name"] == "Aggregated"
        ]
    return LocustRun(locust.returncode, output, json.loads(verdict.read_text()), stats, history)


def serve_fastapi(gateway: ExampleGateway, log: Path) -> tuple[subprocess.Popen[str], str]:
    """The FastAPI example under uvicorn, as its README runs it (its output into `log`: an
    unread pipe would fill up and stall the service)."""
    port = free_port()
    with log.open("w") as output:  # the child keeps its own descriptor
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "examples.fastapi_service.service:app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "OTEL_EXPORTER_OTLP_ENDPOINT": gateway.otlp_grpc,
                "OTEL_BSP_SCHEDULE_DELAY": "500",
                "OTEL_BLRP_SCHEDULE_DELAY": "500",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{base}/healthz"), 60, server)
    return server, base


def wait_until(ready: Callable[[], bool], timeout: float, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the service exited"
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
