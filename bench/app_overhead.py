"""App-side cost: requests/s and server CPU per request of one FastAPI + scikit-learn service
(a) bare, (b) with plain OpenTelemetry FastAPI instrumentation, (c) with otelml.instrument
recording 20 features (its lean server-span middleware, the native span encoder) — and, to
show where the cost goes, (b') OpenTelemetry's instrumentation without the ASGI send/receive
spans and (c-sdk) otelml with the SDK's own span encoder.

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
from bench.timing import ratio_text, round_ratios

ROOT = Path(__file__).resolve().parents[1]
MODES = ("bare", "otel", "otel-lean", "otelml", "otelml-sdk-encoder")


def _body() -> bytes:
    return json.dumps({f"f{i}": 0.1 * i - 1.0 for i in range(20)}).encode()


async def _connection(
    host: str, port: int, request: bytes, until: float, limit: int | None = None
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < until and (limit is None or done < limit):
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


async def _load(port: int, seconds: float, connections: int, limit: int | None = None) -> float:
    """Requests/s of `connections` keep-alive clients for `seconds` (or until they have sent
    `limit` requests between them)."""
    body = _body()
    request = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(
            _connection(
                "127.0.0.1",
                port,
                request,
                start + seconds,
                None if limit is None else limit // connections,
            )
            for _ in range(connections)
        )
    )
    return sum(counts) / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc: steadier than rates)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Modes that are another mode of the service with other settings.
VARIANTS = {
    "otelml-sdk-encoder": ("otelml", {"OTELML_NATIVE_ENCODER": "0"}),
    # Nothing exported during a run: the batch queue takes every span and waits.
    "otelml-export-deferred": (
        "otelml",
        {
            "OTEL_BSP_SCHEDULE_DELAY": "3600000",
            "OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000000",
        },
    ),
    "otelml-sampled-out": ("otelml-spans", {"OTEL_TRACES_SAMPLER": "always_off"}),
}


def requests_per_second(
    mode: str, sink_port: int, model: str = "linear", seconds: float = 3.0
) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one mode."""
    port = _free_port()
    cores = sorted(os.sched_getaffinity(0))
    service_mode, settings = VARIANTS.get(mode, (mode, {}))
    env = {
        **os.environ,
        "BENCH_MODE": service_mode,
        "OTELML_NATIVE_ENCODER": "1",
        "BENCH_MODEL": model,
        "OMP_NUM_THREADS": "1",  # one core: an OpenMP pool would only spin against itself
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "PYTHONPATH": str(ROOT),
        **settings,
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
        before = cpu_seconds(server.pid)
        start = time.perf_counter()
        rate = asyncio.run(_load(port, seconds, 8))
        requests = rate * (time.perf_counter() - start)
        return rate, (cpu_seconds(server.pid) - before) / requests * 1e6
    finally:
        os.sched_setaffinity(0, own)
        server.terminate()
        server.wait(10)


def run(model: str = "linear", rounds: int = 5) -> dict[str, float]:
    """Medians over `rounds`; every ratio is taken within a round, then its median reported
    (with its range: the machine is noisy)."""
    cores = sorted(os.sched_getaffinity(0))
    sink = Blackhole(set(cores[1:]) or set(cores))  # on the load client's core
    try:
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode in MODES:
                rate, cpu_us = requests_per_second(mode, sink.port, model)
                rates[mode].append(rate)
                cpu[mode].append(cpu_us)
    finally:
        sink.stop()
    out = {mode: statistics.median(values) for mode, values in rates.items()}
    out.update({f"{mode}_cpu_us": statistics.median(values) for mode, values in cpu.items()})
    pairs = {
        "c/b": (rates["otelml"], rates["otel"]),
        "c/b_lean": (rates["otelml"], rates["otel-lean"]),
        "c/a": (rates["otelml"], rates["bare"]),
        "csdk/a": (rates["otelml-sdk-encoder"], rates["bare"]),
        "cpu_c/a": (cpu["otelml"], cpu["bare"]),
        "cpu_b/a": (cpu["otel"], cpu["bare"]),
    }
    for name, (top, bottom) in pairs.items():
        round_ratios(out, name, top, bottom)
    return out


def report(model: str, results: dict[str, float]) -> str:
    rates = ", ".join(
        f"{mode} {results[mode]:,.0f} ({results[f'{mode}_cpu_us']:,.0f} µs CPU)" for mode in MODES
    )

    def ratio(name: str) -> str:
        return ratio_text(results, name)

    return (
        f"{model:6s} requests/s (server CPU per request): {rates}\n"
        f"         (c)/(a) = {ratio('c/a')}, (c)/(b) = {ratio('c/b')}, "
        f"(c)/(b') = {ratio('c/b_lean')}, (c-sdk)/(a) = {ratio('csdk/a')}; "
        f"CPU per request (c)/(a) = {ratio('cpu_c/a')}, (b)/(a) = {ratio('cpu_b/a')}"
    )


if __name__ == "__main__":
    for model in ("linear", "gbdt"):
        print(report(model, run(model)))
