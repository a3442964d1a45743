"""BentoML app-side cost: requests/s and server CPU per request of the example's `classify`
API served by `bentoml serve` (in .venv-bentoml, made by `make bentoml-venvs`): (a) bare —
BentoML's defaults, no tracing; (t) BentoML's own tracing on (sample rate 1, OTLP/gRPC to a
blackhole), no otelml; (c) the same plus `@record_api`. (c)/(t) is what otelml adds; (c)/(a)
what monitoring costs in all. The service's processes share one core; the load client and
the blackhole the other. CPU is summed over the service's process tree (/proc).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.app_overhead import _connection
from bench.blackhole import Blackhole
from bench.throughput import _free_port
from bench.timing import ratio_text, round_ratios

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bentoml"
MODES = ("bare", "tracing", "otelml")
TRACING = """\
services:
  tracing:
    exporter_type: otlp
    sample_rate: 1.0
    otlp: {{protocol: grpc, endpoint: "http://127.0.0.1:{port}", grpc: {{insecure: true}}}}
"""
BODY = json.dumps(
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
).encode()


def tree_cpu_seconds(root: int) -> float:
    """CPU time so far of a process and all its live descendants (BentoML's workers run in
    sessions of their own, so the process group does not hold them)."""
    stats: dict[int, tuple[int, int]] = {}  # pid → (parent, clock ticks)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total = 0
    for pid, (_, ticks) in stats.items():
        ancestor = pid
        while ancestor in stats and ancestor != root:
            ancestor = stats[ancestor][0]
        if ancestor == root:
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


async def _load(port: int, seconds: float, connections: int) -> float:
    request = (
        f"POST /classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(_connection("127.0.0.1", port, request, start + seconds) for _ in range(connections))
    )
    return sum(counts) / (time.perf_counter() - start)


def measure(mode: str, sink_port: int, seconds: float = 4.0) -> tuple[float, float]:
    """(requests/s, service CPU µs per request) of one mode."""
    cores = sorted(os.sched_getaffinity(0))
    port = _free_port()
    with tempfile.TemporaryDirectory() as home:
        config = Path(home) / "bentoml.yaml"
        config.write_text(TRACING.format(port=sink_port) if mode != "bare" else "{}\n")
        env = {
            **os.environ,
            "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
            "BENTOML_CONFIG": str(config),
            "BENTOML_HOME": str(Path(home) / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
            "BENCH_MODE": mode,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [
                *(str(VENV / "bin" / "bentoml"), "serve", "bench.apps.bento_service:IrisBench"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {cores[0]}),  # its workers inherit it
        )
        own = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, set(cores[1:]) or set(cores))
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (
                        httpx.post(
                            f"http://127.0.0.1:{port}/classify",
                            content=BODY,
                            headers={"content-type": "application/json"},
                            timeout=5,
                        ).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"bentoml serve ({mode}) did not start")
                time.sleep(0.5)
            asyncio.run(_load(port, 1.0, 8))  # warm-up
            before = tree_cpu_seconds(server.pid)
            start = time.perf_counter()
            rate = asyncio.run(_load(port, seconds, 8))
            requests = rate * (time.perf_counter() - start)
            return rate, (tree_cpu_seconds(server.pid) - before) / requests * 1e6
        finally:
            os.sched_setaffinity(0, own)
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)


def run(rounds: int = 3) -> dict[str, float]:
    if not (VENV / "bin" / "bentoml").exists():
        raise RuntimeError(f"{VENV} is missing: run `make bentoml-venvs`")
    cores = sorted(os.sched_getaffinity(0))
    sink = Blackhole(set(cores[1:]) or set(cores))
    try:
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        cpu: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode in MODES:
                rate, cpu_us = measure(mode, sink.port)
                rates[mode].append(rate)
                cpu[mode].append(cpu_us)
    finally:
        sink.stop()
    out = {m: statistics.median(v) for m, v in rates.items()}
    out.update({f"{m}_cpu_us": statistics.median(v) for m, v in cpu.items()})
    for name, top, bottom in (
        ("c/a", rates["otelml"], rates["bare"]),
        ("c/t", rates["otelml"], rates["tracing"]),
        ("cpu_c/a", cpu["otelml"], cpu["bare"]),
        ("cpu_c/t", cpu["otelml"], cpu["tracing"]),
    ):
        round_ratios(out, name, top, bottom)
    return out


def report(results: dict[str, float]) -> str:
    rates = ", ".join(
        f"{m} {results[m]:,.0f} ({results[f'{m}_cpu_us']:,.0f} µs CPU)" for m in MODES
    )

    def ratio(name: str) -> str:
        return ratio_text(results, name)

    return (
        f"BentoML classify, requests/s (service CPU per request): {rates}\n"
        f"  (c)/(a) = {ratio('c/a')}, (c)/(t) = {ratio('c/t')}; CPU per request "
        f"(c)/(a) = {ratio('cpu_c/a')}, (c)/(t) = {ratio('cpu_c/t')}"
    )


if __name__ == "__main__":
    print(report(run()))
