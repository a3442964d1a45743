"""Gateway throughput vs protobuf parsing, on the same 512-span payload, in one run.

(a) protobuf parse-only: the official Python protobuf (upb) `FromString`;
(a') columnar decode only (ptars on the gateway's slim view schema);
(p) the gateway pipeline in-process: decode → features → histograms + exemplars → spanmetrics;
(b) end to end: a gateway process pinned to one core, fed over OTLP/gRPC by a client pinned
    to the other core.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import Future
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.payload import SPANS, make_request
from bench.timing import median_rate
from otelml.gateway.decode import decode_traces
from otelml.gateway.features import FeaturesConnector
from otelml.gateway.pipeline import Pipeline
from otelml.gateway.state import GatewayState

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def parse_only(payload: bytes) -> float:
    return median_rate(
        lambda: len(
            ExportTraceServiceRequest.FromString(payload).resource_spans[0].scope_spans[0].spans
        )
    )


def decode_only(payload: bytes) -> float:
    return median_rate(lambda: decode_traces(payload).count)


def pipeline_in_process(payload: bytes) -> float:
    state = GatewayState.create()
    pipeline = Pipeline(FeaturesConnector(state.store), state.spanmetrics, state.stats)
    return median_rate(lambda: pipeline.consume_traces(payload, "bench").accepted)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepted(admin_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('otelml_receiver_accepted_spans_total{transport="grpc"}'):
                return float(line.split()[-1])
    return 0.0


def end_to_end_grpc(
    payload: bytes, seconds: float = 4.0, runs: int = 3, workers: int = 1, extra: str = ""
) -> float:
    """Spans/s through a gateway process on `workers` cores (client on the remaining one)."""
    grpc_port, http_port, admin_port = _free_port(), _free_port(), _free_port()
    config = Path(tempfile.mkdtemp()) / "gateway.yaml"
    config.write_text(
        "receivers:\n  otlp:\n"
        f"    grpc: {{endpoint: '127.0.0.1:{grpc_port}'}}\n"
        f"    http: {{endpoint: '127.0.0.1:{http_port}'}}\n"
        f"admin: {{endpoint: '127.0.0.1:{admin_port}'}}\n"
        + (f"workers: {workers}\n" if workers > 1 else "")
        + extra
    )
    cores = sorted(os.sched_getaffinity(0))
    gateway_cores = set(cores[:workers]) if len(cores) > workers else set(cores)
    client_cores = set(cores[workers:]) or set(cores)
    process = subprocess.Popen(
        [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    own = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(process.pid, gateway_cores)
        os.sched_setaffinity(0, client_cores)
        deadline = time.monotonic() + 30
        while True:
            try:
                _accepted(admin_port)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gateway did not start") from None
                time.sleep(0.2)
        # One connection per worker at least: SO_REUSEPORT balances connections, not calls.
        channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{grpc_port}",
                options=[
                    ("grpc.max_send_message_length", 64 << 20),
                    ("grpc.use_local_subchannel_pool", 1),
                ],
            )
            for _ in range(2 * workers)
        ]
        exports = [
            c.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for c in channels
        ]
        rates = []
        for _ in range(runs + 1):  # the first run warms up
            in_flight: list[Future[bytes]] = []
            before = _accepted(admin_port)
            start = time.perf_counter()
            calls = 0
            while time.perf_counter() - start < seconds:
                export = exports[calls % len(exports)]
                in_flight.append(export.future(payload, timeout=30))
                calls += 1
                if len(in_flight) >= 4 * workers:
                    in_flight.pop(0).result()
            for future in in_flight:
                future.result()
            elapsed = time.perf_counter() - start
            rates.append((_accepted(admin_port) - before) / elapsed)
        for channel in channels:
            channel.close()
        rates = sorted(rates[1:])
        return rates[len(rates) // 2]
    finally:
        os.sched_setaffinity(0, own)
        process.terminate()
        process.wait(10)


def run() -> dict[str, float]:
    payload = make_request()
    results = {
        "parse_only": parse_only(payload),
        "decode_only": decode_only(payload),
        "pipeline": pipeline_in_process(payload),
        "grpc_1core": end_to_end_grpc(payload),
    }
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:12s} {value:12,.0f} spans/s  ({SPANS}-span requests)")
