"""`otelml proxy` cost: a stand-in TF Serving REST server called directly vs through the
proxy, in one run on this machine.

Layout (2 cores): the stand-in upstream pinned to one core; the proxy pinned to the other,
which it shares with the load client (a lean asyncio client on keep-alive connections with a
prebuilt request) and the OTLP sink that accepts and drops the proxy's spans. The direct runs
use the same client on the same core, so the ratio says whether the proxy, on a core of its
own, keeps up with the server it fronts. Two upstream models:
- `linear`: the tests' one-line function: the upstream costs almost nothing (a lower bound on
  any real model server), so this ratio is the proxy's own cost made visible;
- `mlp`: a dense network (3 → 1024 → 1024 → 1, fixed weights; ~1 ms per 8-row request on this
  machine), the size of a small production tabular model.
Reported per model: requests/s direct and via the proxy (closed loop, `CONCURRENCY`
connections; direct and proxy alternate each round, the ratio is taken per round) and the
CPU time per request of each process (from /proc; steadier than rates on noisy cores). Added
latency: one connection, one request at a time; p50 and p99 via the proxy minus direct.

The proxy's CPU per request depends on the rate: in front of `linear` (~5,000 req/s) many
requests share each event-loop wakeup; in front of `mlp` (~1,300 req/s) each request has
wakeups of its own, on a core it shares with the client, with caches cold after each switch
(~250 µs vs ~150 µs). The targets are the `linear` CPU figure and the `mlp` ratio: with the
upstream the bottleneck on its own core, a ratio below 1 there means the proxy holds requests
back (or other load on the machine, which moves the direct rate too: read both rates).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.blackhole import Blackhole

CONCURRENCY = 16
ROWS = 8
MODELS = {"linear": [], "mlp": ["--hidden", "1024", "--layers", "2"]}
TARGETS = {"linear": "target: proxy CPU ≤ 150 µs", "mlp": "target ≥ 0.95"}
RULES = """\
routes:
  - path: /v1/models/{model}:predict
    model: {name: "{model}", version: "1"}
    features: {rows: "$.instances[*]", columnar: "$.inputs"}
    predictions: {rows: "$.predictions[*]", columnar: "$.outputs"}
    slices: {tenant: {header: X-Tenant}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request_bytes(port: int) -> bytes:
    rows = [
        {"age": 20 + 5 * i, "income": 30000.0 + 1000 * i, "country": ["DE", "FR", "US"][i % 3]}
        for i in range(ROWS)
    ]
    body = json.dumps({"instances": rows}).encode()
    head = (
        f"POST /v1/models/churn:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Tenant: acme\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)


async def _closed_loop(port: int, seconds: float, connections: int) -> float:
    request = _request_bytes(port)
    done = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _one(reader, writer, request)  # warm the connection
        while time.perf_counter() < deadline:
            await _one(reader, writer, request)
            done += 1
        writer.close()

    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.perf_counter() - start)


async def _latencies(port: int, count: int) -> list[float]:
    request = _request_bytes(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(50):
        await _one(reader, writer, request)
    out = []
    for _ in range(count):
        start = time.perf_counter()
        await _one(reader, writer, request)
        out.append(time.perf_counter() - start)
    writer.close()
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.1)


def run(
    model: str = "linear", rounds: int = 3, seconds: float = 3.0, latency_requests: int = 1000
) -> dict[str, float]:
    """One layout (upstream, proxy, sink), `rounds` alternating direct/proxy runs: medians."""
    cores = sorted(os.sched_getaffinity(0))
    upstream_core, proxy_core = {cores[0]}, {cores[-1]}
    upstream_port, proxy_port, admin_port = _free_port(), _free_port(), _free_port()
    directory = tempfile.TemporaryDirectory()
    rules = Path(directory.name) / "rules.yaml"
    rules.write_text(RULES)
    sink = Blackhole(proxy_core)
    env = {**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "200", "OPENBLAS_NUM_THREADS": "1"}
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.proxy.standin", "--port", str(upstream_port)] + MODELS[model],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    proxy = subprocess.Popen(
        [
            *(sys.executable, "-m", "otelml.cli", "proxy", "-c", str(rules)),
            *("--upstream", f"http://127.0.0.1:{upstream_port}"),
            *("--listen", f"127.0.0.1:{proxy_port}", "--admin", f"127.0.0.1:{admin_port}"),
            *("--gateway", f"http://127.0.0.1:{sink.port}"),
        ],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    own = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(upstream.pid, upstream_core)
        os.sched_setaffinity(proxy.pid, proxy_core)
        os.sched_setaffinity(0, proxy_core)
        _wait_http(f"http://127.0.0.1:{upstream_port}/v1/models/churn", upstream)
        _wait_http(f"http://127.0.0.1:{admin_port}/healthz", proxy)
        asyncio.run(_closed_loop(proxy_port, 1.0, CONCURRENCY))  # warm-up
        figures: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, port in (("direct", upstream_port), ("proxy", proxy_port)):
                before = _cpu_seconds(upstream.pid), _cpu_seconds(proxy.pid)
                start = time.perf_counter()
                rate = asyncio.run(_closed_loop(port, seconds, CONCURRENCY))
                requests = rate * (time.perf_counter() - start)
                figures.setdefault(f"{name}_rps", []).append(rate)
                figures.setdefault(f"{name}_upstream_cpu_us", []).append(
                    (_cpu_seconds(upstream.pid) - before[0]) / requests * 1e6
                )
                if name == "proxy":
                    figures.setdefault("proxy_cpu_us", []).append(
                        (_cpu_seconds(proxy.pid) - before[1]) / requests * 1e6
                    )
            figures.setdefault("ratio", []).append(
                figures["proxy_rps"][-1] / figures["direct_rps"][-1]
            )
        lat_direct: list[float] = []
        lat_proxy: list[float] = []
        for _ in range(rounds):
            lat_direct += asyncio.run(_latencies(upstream_port, latency_requests))
            lat_proxy += asyncio.run(_latencies(proxy_port, latency_requests))
        result = {key: statistics.median(values) for key, values in figures.items()}
        for name, values in (("direct", lat_direct), ("proxy", lat_proxy)):
            result[f"{name}_p50_ms"] = _quantile(values, 0.5) * 1e3
            result[f"{name}_p99_ms"] = _quantile(values, 0.99) * 1e3
        result["added_p50_ms"] = result["proxy_p50_ms"] - result["direct_p50_ms"]
        result["added_p99_ms"] = result["proxy_p99_ms"] - result["direct_p99_ms"]
        return result
    finally:
        os.sched_setaffinity(0, own)
        for process in (proxy, upstream):
            process.terminate()
            process.wait(10)
        sink.stop()
        directory.cleanup()


def report(model: str, figures: dict[str, float]) -> None:
    print(
        f"  {model:6s} direct {figures['direct_rps']:7,.0f} req/s, via proxy "
        f"{figures['proxy_rps']:7,.0f} req/s: ratio {figures['ratio']:.2f} "
        f"({TARGETS[model]}); "
        f"CPU per request: upstream {figures['direct_upstream_cpu_us']:,.0f} µs, proxy "
        f"{figures['proxy_cpu_us']:,.0f} µs"
    )
    print(
        f"         latency p50 {figures['direct_p50_ms']:.2f} → {figures['proxy_p50_ms']:.2f} ms "
        f"(+{figures['added_p50_ms']:.2f}), p99 {figures['direct_p99_ms']:.2f} → "
        f"{figures['proxy_p99_ms']:.2f} ms (+{figures['added_p99_ms']:.2f})"
    )


def main() -> None:
    print(
        f"otelml proxy vs direct, stand-in TF Serving REST ({ROWS} rows/request, "
        f"{CONCURRENCY} connections), medians:"
    )
    for model in MODELS:
        report(model, run(model))


if __name__ == "__main__":
    main()
