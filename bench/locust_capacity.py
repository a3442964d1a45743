"""The highest request rate locust sustains against the FastAPI example, with and without otelml.

`python -m bench locust`. The example's own app served by uvicorn on one core, (a) bare
(`examples.fastapi_service.model_api:app`, no telemetry) and (b) instrumented as the example
ships it (`examples.fastapi_service.service:app`) sending to a real otelml gateway; locust
(the example's locustfile, users calling as fast as they are answered, the default mix of
single and batch calls) and the gateway share the other core. Each user count runs for a few
seconds; the highest rate without failures is what the service sustains. Modes alternate
round by round; medians are reported, and for (b) whether the gateway counted every row.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.throughput import _free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fastapi_service"
APPS = {
    "bare": "examples.fastapi_service.model_api:app",
    "otelml": "examples.fastapi_service.service:app",
}
USERS = (4, 8, 16)
SECONDS = 12


def _wait(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.2)


class Setup:
    """The example's gateway (train.py's reference, gateway.yaml) on free ports."""

    def __init__(self, directory: Path, cores: set[int]) -> None:
        subprocess.run(
            [sys.executable, str(EXAMPLE / "train.py"), str(directory)],
            check=True,
            capture_output=True,
        )
        shutil.copy(EXAMPLE / "gateway.yaml", directory / "gateway.yaml")
        self.directory = directory
        self.ports = {name: _free_port() for name in ("grpc", "http", "admin")}
        env = {
            **os.environ,
            "OTELML_GRPC_PORT": str(self.ports["grpc"]),
            "OTELML_HTTP_PORT": str(self.ports["http"]),
            "OTELML_ADMIN_PORT": str(self.ports["admin"]),
            "OTELML_QUEUE": str(directory / "queue"),
        }
        self.env, self.cores = env, cores
        self.gateway = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        config = str(self.directory / "gateway.yaml")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "otelml.cli", "gateway", "-c", config],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.sched_setaffinity(gateway.pid, self.cores)
        _wait(f"http://127.0.0.1:{self.ports['admin']}/readyz", gateway, "the gateway")
        return gateway

    def restart(self) -> None:
        """A fresh gateway on the same ports: its counts are the next run's rows alone."""
        self.stop()
        self.gateway = self._start()

    def stop(self) -> None:
        self.gateway.terminate()
        self.gateway.wait(30)


def _sustained(
    setup: Setup, mode: str, service_cores: set[int], client_cores: set[int]
) -> dict[str, float]:
    """Serve the app in `mode`; locust at each user count: the best rate and its verdict."""
    port = _free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", APPS[mode], "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
        ],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{setup.ports['grpc']}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.sched_setaffinity(server.pid, service_cores)
    best: dict[str, float] = {"rate": 0.0}
    tried = []
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", server, f"the {mode} service")
        for users in USERS:
            setup.restart()
            figures = _locust(setup, port, users, client_cores)
            tried.append(
                f"{users} users {figures['rate']:,.0f}/s ({figures['failures']:.0f} failed)"
            )
            if figures["failures"] == 0 and figures["rate"] > best["rate"]:
                best = figures
    finally:
        server.terminate()
        server.wait(30)
    print(f"  {mode}: " + ", ".join(tried), flush=True)
    return best


def _locust(setup: Setup, port: int, users: int, cores: set[int]) -> dict[str, float]:
    prefix = setup.directory / f"locust-{users}"
    verdict = setup.directory / "verdict.json"
    command = [
        *(sys.executable, "-m", "locust", "-f", str(EXAMPLE / "locustfile.py")),
        *("--host", f"http://127.0.0.1:{port}", "--headless", "-u", str(users), "-r", str(users)),
        *("-t", f"{SECONDS}s", "--otelml-warmup", "0", "--otelml-drift-at", "never"),
        *("--otelml-wait", "0", "--otelml-settle", "15", "--otelml-poll", "5"),
        *("--otelml-metrics-url", f"http://127.0.0.1:{setup.ports['admin']}/metrics"),
        *("--otelml-ground-truth-url", f"http://127.0.0.1:{setup.ports['http']}/v1/ground_truth"),
        *("--otelml-training-csv", str(setup.directory / "training.csv")),
        *("--otelml-verdict-json", str(verdict), "--json-file", str(prefix)),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.sched_setaffinity(locust.pid, cores)
    locust.wait(SECONDS + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust is the only child reaped
    entries = json.loads(Path(f"{prefix}.json").read_text())
    requests = sum(e["num_requests"] for e in entries)
    elapsed = max(e["last_request_timestamp"] for e in entries) - min(
        e["start_time"] for e in entries
    )
    facts = json.loads(verdict.read_text())
    counted = min((facts["counted"] or {}).values(), default=0)
    return {
        "rate": requests / elapsed,
        "rows_rate": facts["sent"]["rows"] / elapsed,
        "failures": float(sum(e["num_failures"] for e in entries)),
        "users": float(users),
        "rows_sent": float(facts["sent"]["rows"]),
        "rows_counted": float(counted),
        # locust's CPU (start-up included) per second of load: near 1, the load client is
        # what limits the rate
        "locust_cpu": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        / elapsed,
    }


def run(rounds: int = 3) -> dict[str, dict[str, float]]:
    cores = sorted(os.sched_getaffinity(0))
    service_cores = {cores[0]}
    client_cores = set(cores[1:]) or set(cores)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in APPS}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(rounds):
            for mode in APPS:
                setup = Setup(Path(tmp) / f"{mode}-{index}", client_cores)
                try:
                    results[mode].append(_sustained(setup, mode, service_cores, client_cores))
                finally:
                    setup.stop()
    out: dict[str, dict[str, float]] = {}
    for mode, figures in results.items():
        out[mode] = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
    out["ratio"] = {
        "otelml/bare": statistics.median(
            o["rate"] / b["rate"] for b, o in zip(results["bare"], results["otelml"], strict=True)
        )
    }
    return out


def report(results: dict[str, dict[str, float]]) -> str:
    bare, otelml = results["bare"], results["otelml"]
    return (
        f"locust against the FastAPI example (service on one core; locust and the gateway on "
        f"the other), highest sustained rate, 0 failures:\n"
        f"  bare    {bare['rate']:6,.0f} requests/s ({bare['rows_rate']:,.0f} rows/s, "
        f"{bare['users']:.0f} users; locust busy {bare['locust_cpu']:.0%} of its core)\n"
        f"  otelml  {otelml['rate']:6,.0f} requests/s ({otelml['rows_rate']:,.0f} rows/s, "
        f"{otelml['users']:.0f} users; locust busy {otelml['locust_cpu']:.0%}); "
        f"gateway counted {otelml['rows_counted']:,.0f} of "
        f"{otelml['rows_sent']:,.0f} rows\n"
        f"  otelml/bare = {results['ratio']['otelml/bare']:.2f}"
    )


if __name__ == "__main__":
    print(report(run()))
