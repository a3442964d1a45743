"""Forwarding costs: gateway spans/s with all three exporters on vs off (same run), and the
disk queue's write throughput vs a raw sequential write of the same bytes."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.blackhole import Blackhole
from bench.payload import make_request
from bench.throughput import GatewayUnderLoad, pin_process, split_cores
from otelml.gateway.exporters.queue import DiskQueue


def queue_vs_disk_median(payload: bytes, rounds: int = 4) -> tuple[float, float]:
    """Medians of `queue_vs_disk`, the order of the two writers swapped every round (the one
    that goes second meets the first one's dirty pages being written back)."""
    results = [queue_vs_disk(payload, queue_first=i % 2 == 0) for i in range(rounds)]
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
    )


def queue_vs_disk(
    payload: bytes, total_mb: int = 256, queue_first: bool = True
) -> tuple[float, float]:
    """MB/s of DiskQueue.append (with its final fsync) vs write()+fsync of the same bytes.

    Both write new files: the queue's reuse of consumed segments plays no part here."""
    count = total_mb * 1024 * 1024 // len(payload)
    with tempfile.TemporaryDirectory() as directory:

        def queue_run() -> float:
            # "interval" without its timer: one fsync of every segment written, at the end.
            queue = DiskQueue(Path(directory) / "q", max_bytes=1 << 40, fsync="interval")
            start = time.perf_counter()
            for _ in range(count):
                queue.append(payload, 512)
            queue.sync()
            elapsed = time.perf_counter() - start
            queue.close()
            return elapsed

        def raw_run() -> float:
            start = time.perf_counter()
            with open(Path(directory) / "raw.bin", "wb") as file:
                for _ in range(count):
                    file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            return time.perf_counter() - start

        if queue_first:
            queue_s, raw_s = queue_run(), raw_run()
        else:
            raw_s, queue_s = raw_run(), queue_run()
    megabytes = count * len(payload) / 1e6
    return megabytes / queue_s, megabytes / raw_s


def _exporters(sink: Blackhole, protocol: str, queue_dir: str) -> str:
    """All three exporters, default settings but for the protocol of traces and logs."""
    if protocol == "grpc":
        traces = f"{{endpoint: '127.0.0.1:{sink.port}', protocol: grpc}}"
        logs = f"{{endpoint: '127.0.0.1:{sink.port}', protocol: grpc}}"
    else:
        traces = f"{{endpoint: 'http://127.0.0.1:{sink.http_port}', protocol: http/protobuf}}"
        logs = f"{{endpoint: 'http://127.0.0.1:{sink.http_port}/otlp'}}"
    return (
        "exporters:\n"
        f"  traces: {traces}\n"
        f"  logs: {logs}\n"
        f"  metrics: {{remote_write: 'http://127.0.0.1:{sink.http_port}/api/v1/write'}}\n"
        f"queue: {{directory: '{queue_dir}/{protocol}'}}\n"
    )


PROTOCOLS = ("grpc", "http/protobuf")


def forwarding_rounds(rounds: int = 9, seconds: float = 3.0) -> list[dict[str, float]]:
    """Spans/s per round: exporters off, and on with traces and logs over each protocol.

    Three gateways run side by side on the same core — no exporters, exporters over gRPC,
    exporters over HTTP — and take turns under the same load, window by window, so slow
    minutes of a noisy machine hit all alike. Idle ones cost nothing; a loaded one with
    exporters is timed until its queues are empty again. The destination is one process on
    the client's core. Between windows the bench writes back all dirty pages (`sync`), so one
    gateway's write-back never lands in the next one's window (the last second of a gateway's
    own write-back, ~1 % of its work, thus falls outside its window).
    """
    payload = make_request()
    gateway_cores, client_cores = split_cores(1)
    own = os.sched_getaffinity(0)
    pin_process(client_cores)
    sink = Blackhole(client_cores)
    results: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory() as queue_dir, contextlib.ExitStack() as stack:
            gateways = {"off": GatewayUnderLoad(gateway_cores)}
            stack.callback(gateways["off"].close)
            for protocol in PROTOCOLS:
                gateway = GatewayUnderLoad(
                    gateway_cores, extra=_exporters(sink, protocol, queue_dir)
                )
                stack.callback(gateway.close)
                gateways[protocol] = gateway
            for gateway in gateways.values():
                gateway.load(payload, seconds)  # warm-up
                os.sync()
            for _ in range(rounds):
                result = {}
                for name, gateway in gateways.items():
                    result[name] = gateway.load(payload, seconds)
                    os.sync()
                results.append(result)
    finally:
        sink.stop()
        pin_process(own)
    return results


def forwarding_ratios(rounds: int = 9) -> dict[str, tuple[float, float]]:
    """protocol → (spans/s with exporters on, on/off): medians over the rounds of one run,
    each ratio taken within its round (same minute of machine noise); "off" → (spans/s, 1)."""
    results = forwarding_rounds(rounds)
    out = {"off": (statistics.median(r["off"] for r in results), 1.0)}
    for protocol in PROTOCOLS:
        out[protocol] = (
            statistics.median(r[protocol] for r in results),
            statistics.median(r[protocol] / r["off"] for r in results),
        )
    return out


if __name__ == "__main__":
    payload = make_request()
    queue_mbs, raw_mbs = queue_vs_disk_median(payload)
    print(f"queue {queue_mbs:.0f} MB/s vs raw write {raw_mbs:.0f} MB/s ({queue_mbs / raw_mbs:.2f})")
    results = forwarding_rounds()
    for r in results:
        print(
            f"  round: off {r['off']:,.0f} spans/s, "
            + ", ".join(f"{p} {r[p]:,.0f} ({r[p] / r['off']:.2f})" for p in PROTOCOLS)
        )
    for protocol in PROTOCOLS:
        on = statistics.median(r[protocol] for r in results)
        ratio = statistics.median(r[protocol] / r["off"] for r in results)
        print(f"exporters over {protocol}: {on:,.0f} spans/s, on/off {ratio:.2f} (medians)")
