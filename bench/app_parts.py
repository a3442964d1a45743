"""Where otelml's cost on the app side goes: the service of `bench/app_overhead.py` (linear
model) built up one part at a time, server CPU per request of each, side by side in rounds.

- bare: no telemetry;
- provider-only: otelml's tracer provider, FastAPI's own request tracing off, no middleware;
- otelml-spans: + the lean server-span middleware (no features recorded);
- otelml-sampled-out: the same with the sampler at always_off (spans not recording);
- otelml: + the 20 features and 2 outputs recorded: what users run;
- otelml-export-deferred: otelml with nothing exported during the run (the batch queue takes
  every span), to show what the export itself costs.
"""

from __future__ import annotations

import os
import statistics

from bench.app_overhead import requests_per_second
from bench.blackhole import Blackhole

MODES = (
    "bare",
    "provider-only",
    "otelml-spans",
    "otelml-sampled-out",
    "otelml",
    "otelml-export-deferred",
)


def run(rounds: int = 3, model: str = "linear") -> dict[str, float]:
    """Median server CPU µs per request of each mode over `rounds`."""
    cores = sorted(os.sched_getaffinity(0))
    sink = Blackhole(set(cores[1:]) or set(cores))
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for _ in range(rounds):
            for mode in MODES:
                cpu[mode].append(requests_per_second(mode, sink.port, model)[1])
    finally:
        sink.stop()
    return {mode: statistics.median(values) for mode, values in cpu.items()}


def report(cpu_us: dict[str, float]) -> str:
    bare = cpu_us["bare"]
    parts = ", ".join(f"{mode} {us:,.0f} µs ({us - bare:+,.0f})" for mode, us in cpu_us.items())
    return f"app side by parts, server CPU per request (vs bare): {parts}"


if __name__ == "__main__":
    print(report(run()))
