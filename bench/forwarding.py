"""Forwarding costs: gateway spans/s with all three exporters on vs off (same run), and the
disk queue's write throughput vs a raw sequential write of the same bytes."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.payload import make_request
from bench.throughput import end_to_end_grpc
from otelml.gateway.exporters.queue import DiskQueue


def queue_vs_disk_median(payload: bytes, rounds: int = 3) -> tuple[float, float]:
    results = [queue_vs_disk(payload) for _ in range(rounds)]
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
    )


def queue_vs_disk(payload: bytes, total_mb: int = 256) -> tuple[float, float]:
    """MB/s of DiskQueue.append (with its final fsync) vs write()+fsync of the same bytes."""
    count = total_mb * 1024 * 1024 // len(payload)
    with tempfile.TemporaryDirectory() as directory:
        queue = DiskQueue(Path(directory) / "q", max_bytes=1 << 40, fsync="never")
        start = time.perf_counter()
        for _ in range(count):
            queue.append(payload, 512)
        queue.sync()
        os.fsync(queue._writer.fileno())
        queue_s = time.perf_counter() - start
        queue.close()
        raw = Path(directory) / "raw.bin"
        start = time.perf_counter()
        with open(raw, "wb") as file:
            for _ in range(count):
                file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        raw_s = time.perf_counter() - start
    megabytes = count * len(payload) / 1e6
    return megabytes / queue_s, megabytes / raw_s


class Blackhole:
    """A destination that accepts every OTLP export and does nothing: the bench measures the
    gateway's forwarding cost, not a sink's (which would share the load client's core)."""

    def __init__(self) -> None:
        from concurrent import futures

        import grpc

        def accept(request: bytes, context: object) -> bytes:
            return b""

        handler = grpc.unary_unary_rpc_method_handler(accept)
        self.server = grpc.server(futures.ThreadPoolExecutor(2))
        for service in ("trace", "logs", "metrics"):
            name = {"trace": "TraceService", "logs": "LogsService", "metrics": "MetricsService"}
            self.server.add_generic_rpc_handlers(
                (
                    grpc.method_handlers_generic_handler(
                        f"opentelemetry.proto.collector.{service}.v1.{name[service]}",
                        {"Export": handler},
                    ),
                )
            )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0)


def forwarding_ratio(rounds: int = 3) -> tuple[float, float, float]:
    """(spans/s exporters off, on, on/off): medians of alternating runs, in one run."""
    payload = make_request()
    sink = Blackhole()
    try:
        queue_dir = tempfile.mkdtemp()
        extra = (
            "exporters:\n"
            f"  traces: {{endpoint: '127.0.0.1:{sink.port}'}}\n"
            f"  logs: {{endpoint: '127.0.0.1:{sink.port}', protocol: grpc}}\n"
            "  metrics: {remote_write: 'http://127.0.0.1:9/api/v1/write'}\n"
            f"queue: {{directory: '{queue_dir}'}}\n"
        )
        off, on = [], []
        for _ in range(rounds):
            off.append(end_to_end_grpc(payload, runs=1))
            on.append(end_to_end_grpc(payload, runs=1, extra=extra))
        ratios = [b / a for a, b in zip(off, on, strict=True)]
        return statistics.median(off), statistics.median(on), statistics.median(ratios)
    finally:
        sink.stop()


if __name__ == "__main__":
    payload = make_request()
    queue_mbs, raw_mbs = queue_vs_disk_median(payload)
    print(f"queue {queue_mbs:.0f} MB/s vs raw write {raw_mbs:.0f} MB/s ({queue_mbs / raw_mbs:.2f})")
    off, on, ratio = forwarding_ratio()
    print(f"exporters off {off:,.0f} spans/s, on {on:,.0f} spans/s, on/off {ratio:.2f}")
