"""Scaling across cores: the pipeline's spans/s in 1 vs 2 worker processes, same payload.

Workers share nothing while they count (each owns its distributions) and merge at scrape
time, so the only limit is cores. Each process runs the in-process pipeline for a fixed time.
"""

from __future__ import annotations

import multiprocessing
import os
import time

from bench.payload import make_request


def _worker(core: int, seconds: float, start_at: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from otelml.gateway.gateway_state import GatewayState

    os.sched_setaffinity(0, {core})
    payload = make_request()
    state = GatewayState.create()
    pipeline = state.pipeline()
    pipeline.consume_traces(payload, "bench")  # warm-up
    while time.time() < start_at:
        time.sleep(0.001)
    spans = 0
    begin = time.perf_counter()
    while time.perf_counter() - begin < seconds:
        spans += pipeline.consume_traces(payload, "bench").accepted
    results.put(spans / (time.perf_counter() - begin))


def pipeline_rate(processes: int, seconds: float = 3.0) -> float:
    """Total spans/s of `processes` pipeline workers, each pinned to its own core."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    cores = sorted(os.sched_getaffinity(0))
    start_at = time.time() + 3.0
    workers = [
        context.Process(target=_worker, args=(cores[i % len(cores)], seconds, start_at, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)


if __name__ == "__main__":
    one, two = pipeline_rate(1), pipeline_rate(2)
    print(f"1 worker {one:,.0f} spans/s; 2 workers {two:,.0f} spans/s; ×{two / one:.2f}")
