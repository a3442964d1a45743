"""Forwarding costs: gateway spans/s with all three exporters on vs off (same run), and the
disk queue's write throughput vs a raw sequential write of the same bytes."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.blackhole import Blackhole
from bench.payload import make_request
from bench.throughput import GatewayUnderLoad, pin_process, split_cores
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
        os.fsync(queue._writer)
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


def forwarding_rounds(rounds: int = 7, seconds: float = 3.0) -> list[tuple[float, float]]:
    """(spans/s exporters off, on) per round.

    Two gateways run side by side on the same core, one without exporters and one with all
    three (default settings), and take turns under the same load: off and on alternate
    window by window, so slow minutes of a noisy machine hit both alike. The idle one costs
    nothing; the loaded one is timed until its queues are empty again.
    """
    payload = make_request()
    gateway_cores, client_cores = split_cores(1)
    own = os.sched_getaffinity(0)
    pin_process(client_cores)
    sink = Blackhole(client_cores)
    results = []
    try:
        with tempfile.TemporaryDirectory() as queue_dir:
            extra = (
                "exporters:\n"
                f"  traces: {{endpoint: '127.0.0.1:{sink.port}'}}\n"
                f"  logs: {{endpoint: '127.0.0.1:{sink.port}', protocol: grpc}}\n"
                "  metrics: {remote_write: 'http://127.0.0.1:9/api/v1/write'}\n"
                f"queue: {{directory: '{queue_dir}'}}\n"
            )
            off = GatewayUnderLoad(gateway_cores)
            try:
                on = GatewayUnderLoad(gateway_cores, extra=extra)
                try:
                    off.load(payload, seconds)  # warm-up
                    on.load(payload, seconds)
                    for _ in range(rounds):
                        results.append((off.load(payload, seconds), on.load(payload, seconds)))
                finally:
                    on.close()
            finally:
                off.close()
    finally:
        sink.stop()
        pin_process(own)
    return results


def forwarding_ratio(rounds: int = 5) -> tuple[float, float, float]:
    """(spans/s exporters off, on, on/off): medians over alternating rounds of one run (each
    ratio taken within its round, same minute of machine noise)."""
    results = forwarding_rounds(rounds)
    return (
        statistics.median(off for off, _ in results),
        statistics.median(on for _, on in results),
        statistics.median(on / off for off, on in results),
    )


if __name__ == "__main__":
    payload = make_request()
    queue_mbs, raw_mbs = queue_vs_disk_median(payload)
    print(f"queue {queue_mbs:.0f} MB/s vs raw write {raw_mbs:.0f} MB/s ({queue_mbs / raw_mbs:.2f})")
    results = forwarding_rounds()
    for off, on in results:
        print(f"  round: off {off:,.0f} spans/s, on {on:,.0f} spans/s, on/off {on / off:.2f}")
    off = statistics.median(off for off, _ in results)
    on = statistics.median(on for _, on in results)
    ratio = statistics.median(on / off for off, on in results)
    print(f"exporters off {off:,.0f} spans/s, on {on:,.0f} spans/s, on/off {ratio:.2f} (medians)")
