"""App-side cost: requests/s of one FastAPI + scikit-learn service (a) bare, (b) with plain
OpenTelemetry FastAPI instrumentation, (c) with otelml.instrument recording 20 features —
and (b') OpenTelemetry set up as otelml sets it up (no ASGI send/receive spans), so (c)/(b')
is the cost of recording alone.

The service runs on one core under uvicorn; a keep-alive HTTP/1.1 load client on the other
core. Spans go to a blackhole OTLP server (its own process, on the client's core). Modes
alternate round by round; medians are reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.blackhole import Blackhole
from bench.throughput import _free_port

ROOT = Path(__file__).resolve().parents[1]
MODES = ("bare", "otel", "otel-lean", "otelml")


def _body() -> bytes:
    return json.dumps({f"f{i}": 0.1 * i - 1.0 for i in range(20)}).encode()


async def _connection(host: str, port: int, request: bytes, until: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            done += 1
    finally:
        writer.close()
    return done


async def _load(port: int, seconds: float, connections: int) -> float:
    body = _body()
    request = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(_connection("127.0.0.1", port, request, start + seconds) for _ in range(connections))
    )
    return sum(counts) / (time.perf_counter() - start)


def requests_per_second(
    mode: str, sink_port: int, model: str = "linear", seconds: float = 3.0
) -> float:
    port = _free_port()
    cores = sorted(os.sched_getaffinity(0))
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_MODEL": model,
        "OMP_NUM_THREADS": "1",  # one core: an OpenMP pool would only spin against itself
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.apps.model_service:app"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        ],
        env=env,
    )
    own = os.sched_getaffinity(0)
    try:
        if len(cores) > 1:
            os.sched_setaffinity(server.pid, {cores[0]})
            os.sched_setaffinity(0, set(cores[1:]))
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/predict", content=_body(), timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{mode} service did not start") from None
                time.sleep(0.2)
        asyncio.run(_load(port, 1.0, 8))  # warm-up
        return asyncio.run(_load(port, seconds, 8))
    finally:
        os.sched_setaffinity(0, own)
        server.terminate()
        server.wait(10)


def run(model: str = "linear", rounds: int = 3) -> dict[str, float]:
    cores = sorted(os.sched_getaffinity(0))
    sink = Blackhole(set(cores[1:]) or set(cores))  # on the load client's core
    try:
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode in MODES:
                rates[mode].append(requests_per_second(mode, sink.port, model))
    finally:
        sink.stop()
    out = {mode: statistics.median(values) for mode, values in rates.items()}
    out["c/b"] = statistics.median(
        c / b for b, c in zip(rates["otel"], rates["otelml"], strict=True)
    )
    out["c/b_lean"] = statistics.median(
        c / b for b, c in zip(rates["otel-lean"], rates["otelml"], strict=True)
    )
    out["c/a"] = statistics.median(
        c / a for a, c in zip(rates["bare"], rates["otelml"], strict=True)
    )
    return out


def report(model: str, results: dict[str, float]) -> str:
    rates = ", ".join(f"{mode} {results[mode]:,.0f}" for mode in MODES)
    return (
        f"{model:6s} requests/s: {rates}; "
        f"(c)/(b) = {results['c/b']:.2f}, (c)/(b') = {results['c/b_lean']:.2f}, "
        f"(c)/(a) = {results['c/a']:.2f}"
    )


if __name__ == "__main__":
    for model in ("linear", "gbdt"):
        print(report(model, run(model)))
