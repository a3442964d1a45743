"""Runs the demo: gateway, model service, traffic, summary; then serves the UI until Ctrl-C.

Every part is stopped on every way out — the end, an error, Ctrl-C at any moment: the
service (and Prometheus) run in their own sessions, so the terminal's Ctrl-C reaches only this
process, which then stops them, stops the gateway and removes its temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from otelml import profile
from otelml.config import parse
from otelml.demo.model import MODEL, OUTPUT, VERSION, customers, predict
from otelml.demo.traffic import Traffic
from otelml.gateway.app import Gateway


@dataclass(frozen=True)
class Ports:
    """Where the demo listens (127.0.0.1); 0 = any free port."""

    grpc: int = 4317
    http: int = 4318
    admin: int = 9464
    service: int = 0
    prometheus: int = 9090


class _Interrupted(Exception):
    """Ctrl-C: raised once; later ones are ignored while the demo cleans up."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start:\n{tail}")
        time.sleep(0.2)


def _gateway_config(directory: Path, ports: Ports, window: float) -> Any:
    training = customers(np.random.default_rng(7), 20_000, drifted=False)
    training[OUTPUT] = predict(training)
    reference = profile.build(training, model=MODEL, version=VERSION, predictions=[OUTPUT])
    path = directory / "reference.json"
    profile.save(reference, path)
    print(f"reference profile: {path} ({reference.rows} training rows)")
    return parse(
        {
            "receivers": {
                "otlp": {
                    "grpc": {"endpoint": f"127.0.0.1:{ports.grpc}"},
                    "http": {"endpoint": f"127.0.0.1:{ports.http}"},
                }
            },
            "admin": {"endpoint": f"127.0.0.1:{ports.admin}"},
            "queue": {"directory": str(directory / "queue")},
            "models": [
                {
                    "name": MODEL,
                    "version": VERSION,
                    "reference": str(path),
                    "window": window,
                    "step": 1,
                    "segments": ["country"],
                    "drift": {"min_samples": 100},
                    "ground_truth": {"ttl": "1h"},
                }
            ],
        }
    )


class _Demo:
    def __init__(self, ports: Ports, directory: Path) -> None:
        self.ports = ports
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.gateway: Gateway | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.admin = ""

    def start_gateway(self, window: float) -> tuple[int, int, int]:
        config = _gateway_config(self.directory, self.ports, window)
        gateway = self.gateway = Gateway(config)
        loop = self.loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="otelml-gateway", daemon=True).start()
        bound = asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=30)

        async def start_drift() -> None:
            gateway.start_drift()

        asyncio.run_coroutine_threadsafe(start_drift(), loop).result(timeout=30)
        assert bound.grpc is not None and bound.http is not None and bound.admin is not None
        self.admin = f"http://127.0.0.1:{bound.admin}"
        return bound.grpc, bound.http, bound.admin

    def start_service(self, grpc_port: int) -> int:
        port = self.ports.service or _free_port()
        log = self.directory / "service.log"
        environment = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": "churn-api",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "otelml.demo.service:app"]
        process = self._spawn(
            [*uvicorn, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            log,
            environment,
        )
        _wait_http(f"http://127.0.0.1:{port}/healthz", process, "the model service", log)
        return port

    def start_prometheus(self, admin_port: int) -> str:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "--with-prometheus: no `prometheus` on the PATH (apt-get install prometheus)"
            )
        port = self.ports.prometheus or _free_port()
        config = self.directory / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 5s}\n"
            "scrape_configs:\n"
            "  - job_name: otelml\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{admin_port}']}}]\n"
        )
        log = self.directory / "prometheus.log"
        process = self._spawn(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.directory / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            log,
        )
        _wait_http(f"http://127.0.0.1:{port}/-/ready", process, "prometheus", log)
        return f"http://127.0.0.1:{port}"

    def _spawn(
        self, command: list[str], log: Path, environment: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(environment or {})},
                start_new_session=True,  # the terminal's Ctrl-C is ours to pass on
            )
        self.processes.append(process)
        return process

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        return _get(f"{self.admin}/api/v1/{path}" + (f"?{query}" if query else ""))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.gateway is not None and self.loop is not None:
            stop = asyncio.run_coroutine_threadsafe(self.gateway.stop(grace=1.0), self.loop)
            with contextlib.suppress(Exception):
                stop.result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # one is enough: the rest would cut cleanup
    raise _Interrupted


def run(
    duration: float = 20.0,
    workdir: str | None = None,
    ports: Ports | None = None,
    exit_after_summary: bool = False,
    with_prometheus: bool = False,
) -> int:
    """The demo; returns the exit status (0 also after Ctrl-C, which is how it ends)."""
    ports = ports or Ports()
    temporary = workdir is None
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="otelml-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGINT, _interrupt)
    demo = _Demo(ports, directory)
    try:
        return _run(demo, duration, exit_after_summary, with_prometheus)
    except _Interrupted:
        print("\nstopping (Ctrl-C)…", flush=True)
        return 0
    except (OSError, RuntimeError) as exc:
        print(f"otelml demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        demo.stop()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signal.SIGINT, previous)


def _run(demo: _Demo, duration: float, exit_after_summary: bool, with_prometheus: bool) -> int:
    window = max(4.0, duration / 4)  # the drift phase holds two full windows
    grpc_port, http_port, admin_port = demo.start_gateway(window)
    print(f"gateway: OTLP gRPC :{grpc_port}  OTLP HTTP :{http_port}  admin :{admin_port}")
    service_port = demo.start_service(grpc_port)
    print(f"model service (FastAPI + otelml.instrument, uvicorn): http://127.0.0.1:{service_port}")
    if with_prometheus:
        print(f"prometheus (exemplar storage on): {demo.start_prometheus(admin_port)}")
    ui = f"{demo.admin}/ui/"
    print(f"UI: {ui}  (live from now on)\n")
    traffic = Traffic(service_port, http_port)
    drift_started = _send(traffic, duration)
    time.sleep(1.5)  # the service's last spans, and one more drift step over them
    traffic.post_labels(everything=True)
    time.sleep(1.2)
    _summary(demo, traffic, window, drift_started)
    print(f"\nUI: {ui}")
    if exit_after_summary:
        traffic.close()
        return 0
    print(
        "still sending drifted traffic (about 50 requests a second) so the page stays live;"
        " Ctrl-C stops"
    )
    while True:
        traffic.request(drifted=True)
        traffic.post_labels()
        time.sleep(0.02)  # every window keeps several times drift.min_samples


def _send(traffic: Traffic, duration: float) -> float:
    """The normal phase, then the drift phase; returns when (wall clock) the drift began."""
    start = time.monotonic()
    drift_started = 0.0
    next_report = start
    while (elapsed := time.monotonic() - start) < duration:
        drifted = elapsed >= duration / 2
        if drifted and not drift_started:
            drift_started = time.time()
            print(f"  t={elapsed:5.1f}s  drift phase: customers are older, on longer contracts")
        traffic.request(drifted)
        traffic.post_labels()
        if time.monotonic() >= next_report:
            counts = traffic.counts
            print(
                f"  t={elapsed:5.1f}s  phase={'DRIFT' if drifted else 'normal':6s}  "
                f"requests={counts.requests}  rows={counts.rows}  labels posted={counts.labels}",
                flush=True,
            )
            next_report += 5
        time.sleep(0.002)
    return drift_started


def _summary(demo: _Demo, traffic: Traffic, window: float, drift_started: float) -> None:
    """Per series: the test, the verdict, the bucket that moved most (reference vs the last
    window, on the reference's bins) and a request that put a value there; then performance."""
    counts = traffic.counts
    print(
        f"\nsent {counts.requests} requests / {counts.rows} rows ({counts.drifted_rows} drifted), "
        f"{counts.labels} labels"
    )
    detail = demo.api("model", name=MODEL, version=VERSION)
    print(
        f"\nreference = share of the training rows, current = share of the last {window:g} s "
        "window, per reference bucket\n"
    )
    print(
        f"{'series':16s} {'drift test':>22s} {'verdict':>8s}  {'bucket that moved most':32s}"
        f" {'reference':>9s} {'current':>8s}  a request in that bucket"
    )
    for series in detail["series"]:
        name = series["name"]
        test = "-"
        if series["method"]:
            sign = "<" if series["direction"] == "below" else "≥"
            score = "–" if series["score"] is None else f"{series['score']:.3f}"
            test = f"{series['method']}={score} ({sign}{series['threshold']:g})"
        verdict = {True: "DRIFT", False: "ok", None: "n/a"}[series["detected"]]
        moved = series["moved_most"]
        if moved is None:
            print(f"{name:16s} {test:>22s} {verdict:>8s}")
            continue
        label = moved["label"].replace("x", name) if series["kind"] == "numeric" else moved["label"]
        trace = _request_in(demo, series, moved["index"])
        print(
            f"{name:16s} {test:>22s} {verdict:>8s}  {label:32s} {moved['reference_share']:9.1%}"
            f" {moved['current_share']:8.1%}  {trace}"
        )
    print(
        f"\nEach request opens in the UI with every feature and the prediction the gateway saw:"
        f"\n  {demo.admin}/ui/#/m/{MODEL}/{VERSION}/feature/age"
    )
    for output in detail["performance"]:
        current = output["current"]
        if not current:
            continue
        metrics = current["metrics"]
        main = "accuracy" if "accuracy" in metrics else next(iter(metrics), None)
        if main is None:
            continue
        before = [p for p in output["history"] if p["time"] < drift_started and p["labels"]]
        earlier = (
            f"; before the drift: {main} {before[-1]['metrics'][main]:.3f} over "
            f"{before[-1]['labels']} labels"
            if before and main in before[-1]["metrics"]
            else ""
        )
        print(
            f"\nperformance ({output['output']}): {main} {metrics[main]:.3f} over "
            f"{current['labels']} labels joined in the last {window:g} s{earlier}"
        )


def _request_in(demo: _Demo, series: dict[str, Any], bucket: int) -> str:
    detail = demo.api(
        "series", name=MODEL, version=VERSION, role=series["role"], series=series["name"]
    )
    for found in detail["buckets"]:
        if found["index"] == bucket and found["samples"]:
            sample = found["samples"][0]
            value = sample["value"]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            return f"trace {sample['trace_id']} ({series['name']}={shown})"
    return "-"
