"""Gateway throughput vs protobuf parsing, on the same 512-span payload, in one run.

(a) protobuf parse-only: the official Python protobuf (upb) `FromString`;
(a') columnar decode only (ptars on the gateway's slim view schema);
(p) the gateway pipeline in-process: decode → features → histograms + exemplars → spanmetrics;
(b) end to end: a gateway process pinned to one core, fed over OTLP/gRPC by a client pinned
    to the other core.
"""

from __future__ import annotations

import contextlib
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
from otelml.gateway.gateway_state import GatewayState

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
    pipeline = state.pipeline()
    return median_rate(lambda: pipeline.consume_traces(payload, "bench").accepted)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metrics(admin_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as response:
        return {
            name: float(value)
            for name, _, value in (
                line.rpartition(" ") for line in response.read().decode().splitlines()
            )
            if name and not name.startswith("#")
        }


def _accepted(admin_port: int) -> float:
    return _metrics(admin_port).get('otelml_receiver_accepted_spans_total{transport="grpc"}', 0.0)


def pin_process(cores: set[int]) -> None:
    """Every thread of this process onto `cores`: `sched_setaffinity(0)` moves only the calling
    thread, and gRPC's I/O threads started earlier would stay free to run on the gateway's core."""
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # the thread has ended
            os.sched_setaffinity(int(task), cores)


def split_cores(workers: int) -> tuple[set[int], set[int]]:
    """(the gateway's cores, the load client's): the first `workers` cores, and the rest."""
    cores = sorted(os.sched_getaffinity(0))
    gateway = set(cores[:workers]) if len(cores) > workers else set(cores)
    return gateway, set(cores[workers:]) or set(cores)


class GatewayUnderLoad:
    """A gateway process pinned to `cores`, and OTLP/gRPC channels to load it with."""

    def __init__(self, cores: set[int], workers: int = 1, extra: str = "") -> None:
        grpc_port, http_port, self.admin_port = _free_port(), _free_port(), _free_port()
        self._directory = tempfile.TemporaryDirectory()
        config = Path(self._directory.name) / "gateway.yaml"
        config.write_text(
            "receivers:\n  otlp:\n"
            f"    grpc: {{endpoint: '127.0.0.1:{grpc_port}'}}\n"
            f"    http: {{endpoint: '127.0.0.1:{http_port}'}}\n"
            f"admin: {{endpoint: '127.0.0.1:{self.admin_port}'}}\n"
            + (f"workers: {workers}\n" if workers > 1 else "")
            + extra
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otelml.cli", "gateway", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.sched_setaffinity(self.process.pid, cores)
        deadline = time.monotonic() + 30
        while True:
            try:
                _accepted(self.admin_port)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("gateway did not start") from None
                time.sleep(0.2)
        # One connection per worker at least: SO_REUSEPORT balances connections, not calls.
        self._channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{grpc_port}",
                options=[
                    ("grpc.max_send_message_length", 64 << 20),
                    ("grpc.use_local_subchannel_pool", 1),
                ],
            )
            for _ in range(2 * workers)
        ]
        self._exports = [
            c.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for c in self._channels
        ]
        self.workers = workers

    def _queued(self) -> float:
        return sum(
            value
            for name, value in _metrics(self.admin_port).items()
            if name.startswith("otelml_exporter_queue_size{")
        )

    def load(self, payload: bytes, seconds: float) -> float:
        """Spans/s accepted under `seconds` of load, 4 requests in flight per worker.

        The time runs until the last answer and, with exporters, until their queues are
        empty again: work the senders put off until after the load counts too."""
        in_flight: list[Future[bytes]] = []
        before = _accepted(self.admin_port)
        start = time.perf_counter()
        calls = 0
        while time.perf_counter() - start < seconds:
            export = self._exports[calls % len(self._exports)]
            in_flight.append(export.future(payload, timeout=30))
            calls += 1
            if len(in_flight) >= 4 * self.workers:
                in_flight.pop(0).result()
        for future in in_flight:
            future.result()
        while self._queued() > 0:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        return (_accepted(self.admin_port) - before) / elapsed

    def close(self) -> None:
        for channel in getattr(self, "_channels", ()):
            channel.close()
        self.process.terminate()
        self.process.wait(10)
        self._directory.cleanup()


def end_to_end_grpc(
    payload: bytes, seconds: float = 4.0, runs: int = 3, workers: int = 1, extra: str = ""
) -> float:
    """Spans/s through a gateway process on `workers` cores (client on the remaining one)."""
    gateway_cores, client_cores = split_cores(workers)
    own = os.sched_getaffinity(0)
    pin_process(client_cores)
    try:
        gateway = GatewayUnderLoad(gateway_cores, workers, extra)
        try:
            gateway.load(payload, seconds)  # warm-up
            rates = sorted(gateway.load(payload, seconds) for _ in range(runs))
        finally:
            gateway.close()
        return rates[len(rates) // 2]
    finally:
        pin_process(own)


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
