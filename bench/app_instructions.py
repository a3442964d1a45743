"""Instructions per request of the app-side service (`bench/app_overhead.py`'s, linear model)
under callgrind, per thread: deterministic where CPU time on a noisy VM moves by ±15 µs
between runs, so a change's effect shows even when the machine is loaded.

    python -m bench app-instructions      # needs valgrind (apt-get install -y valgrind)

Each mode's server runs under `valgrind --tool=callgrind --separate-threads=yes`; counters
are zeroed after a warm-up, dumped after REQUESTS requests on 8 keep-alive connections, and
each thread's total is divided by the requests. Thread 1 is the event loop (middleware, span,
encoding); the handler's thread pool runs the sync endpoint (recording); the rest are the
export and gRPC threads. Under valgrind the service runs ~50 × slower, so timer-driven work
(the batch processor's scheduled exports) is counted more often per request than natively.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import httpx

from bench.app_overhead import ROOT, VARIANTS, _body, _load
from bench.blackhole import Blackhole
from bench.throughput import _free_port

MODES = ("bare", "otelml-sampled-out", "otelml-spans", "otelml")
WARM_UP, REQUESTS = 400, 400


def _callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _thread_totals(prefix: str) -> dict[int, int]:
    """Instructions of each thread in callgrind's first dump (`PREFIX.1-NN`)."""
    totals = {}
    for path in glob.glob(prefix + ".1-*"):
        with open(path) as dump:
            found = re.search(r"^(?:summary|totals): (\d+)", dump.read(), re.M)
        totals[int(path.rsplit("-", 1)[1])] = int(found.group(1)) if found else 0
    return totals


def run(mode: str, sink_port: int) -> dict[int, float]:
    """Instructions per request of each thread (by callgrind's thread number) of one mode."""
    service_mode, settings = VARIANTS.get(mode, (mode, {}))
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_MODE": service_mode,
        "BENCH_MODEL": "linear",
        "OMP_NUM_THREADS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "PYTHONPATH": str(ROOT),
        **settings,
    }
    with tempfile.TemporaryDirectory() as directory:
        prefix = os.path.join(directory, "callgrind.out")
        server = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", "--separate-threads=yes"),
                f"--callgrind-out-file={prefix}",
                *(sys.executable, "-m", "uvicorn", "bench.apps.model_service:app"),
                *("--port", str(port), "--log-level", "warning", "--no-access-log"),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    httpx.post(f"http://127.0.0.1:{port}/predict", content=_body(), timeout=10)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"{mode} service did not start") from None
                    time.sleep(1)
            asyncio.run(_load(port, 60.0, 8, limit=WARM_UP))
            _callgrind_control("-z", server.pid)  # counted from here
            asyncio.run(_load(port, 600.0, 8, limit=REQUESTS))
            _callgrind_control("-d", server.pid)
            time.sleep(1)
        finally:
            server.terminate()
            server.wait(60)
        return {thread: count / REQUESTS for thread, count in _thread_totals(prefix).items()}


def report(results: dict[str, dict[int, float]]) -> str:
    lines = ["app side under callgrind, instructions per request (linear model):"]
    bare = sum(results["bare"].values())
    for mode, threads in results.items():
        loop = threads.get(1, 0.0)
        total = sum(threads.values())
        lines.append(
            f"  {mode:20s} {total / 1e6:6.3f} M ({(total - bare) / 1e3:+6.0f} k): "
            f"event loop {loop / 1e6:.3f} M, other threads {(total - loop) / 1e6:.3f} M"
        )
    return "\n".join(lines)


def main() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("app-instructions needs valgrind: apt-get install -y valgrind")
    cores = sorted(os.sched_getaffinity(0))
    sink = Blackhole(set(cores[1:]) or set(cores))
    try:
        print(report({mode: run(mode, sink.port) for mode in MODES}))
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
