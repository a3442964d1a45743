"""`python -m bench` (or `make bench`): every speed figure of the README, measured in one run;
`python -m bench locust` only the locust capacity of the FastAPI example, with and without otelml.

Throughput figures are medians over repeated runs, and each ratio is taken within a run
(same payload, same minute of machine noise) before its median is reported.
"""

from __future__ import annotations

import statistics
import sys

from bench import (
    app_instructions,
    app_overhead,
    app_parts,
    bentoml_overhead,
    cbpe,
    drift,
    forwarding,
    locust_capacity,
    proxy,
    render,
    throughput,
    ui,
    workers,
)
from bench.payload import CATEGORICAL, NUMERIC, SPANS, make_request

ROUNDS = 3


def main() -> None:
    payload = make_request()
    print(
        f"payload: {SPANS} spans × {NUMERIC + CATEGORICAL} features ({NUMERIC} numeric, "
        f"{CATEGORICAL} categorical), {len(payload):,} bytes; {ROUNDS} rounds, medians\n"
    )
    rounds = [throughput.run() for _ in range(ROUNDS)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    ratio = statistics.median(r["grpc_1core"] / r["parse_only"] for r in rounds)
    print(f"(a)  protobuf parse-only (upb)           {med('parse_only'):>10,.0f} spans/s")
    print(f"(a') columnar scan only (C)              {med('decode_only'):>10,.0f} spans/s")
    print(f"(p)  gateway pipeline, in-process        {med('pipeline'):>10,.0f} spans/s")
    print(
        f"(b)  gateway end to end, OTLP/gRPC, 1 core {med('grpc_1core'):>8,.0f} spans/s"
        "   target ≥ 100,000"
    )
    print(f"     (b)/(a) = {ratio:.2f}   target ≥ 0.25\n")

    one = statistics.median(workers.pipeline_rate(1) for _ in range(ROUNDS))
    two = statistics.median(workers.pipeline_rate(2) for _ in range(ROUNDS))
    print(
        f"workers: pipeline 1 process {one:,.0f} spans/s, 2 processes {two:,.0f} spans/s "
        f"(×{two / one:.2f})"
    )
    grpc_two = statistics.median(
        throughput.end_to_end_grpc(payload, workers=2) for _ in range(ROUNDS)
    )
    print(
        f"         gateway `workers: 2` end to end, sharing both cores with the load client: "
        f"{grpc_two:,.0f} spans/s\n"
    )

    figures = render.run()
    speedup_text = figures["client_text_s"] / figures["ours_text_s"]
    speedup_om = figures["client_openmetrics_s"] / figures["ours_openmetrics_s"]
    print(f"/metrics render, {figures['series']:,.0f} series (median of 7):")
    print(
        f"  text 0.0.4:  ours {figures['ours_text_s'] * 1e3:6.1f} ms   prometheus_client "
        f"{figures['client_text_s'] * 1e3:6.1f} ms   ×{speedup_text:.0f}"
    )
    print(
        f"  OpenMetrics: ours {figures['ours_openmetrics_s'] * 1e3:6.1f} ms   prometheus_client "
        f"{figures['client_openmetrics_s'] * 1e3:6.1f} ms   ×{speedup_om:.0f}"
        "   target ≤ 20 ms and ≥ ×5"
    )

    queue_mbs, raw_mbs = forwarding.queue_vs_disk_median(payload)
    print(
        f"\ndisk queue writes {queue_mbs:,.0f} MB/s vs a raw sequential write of the same bytes "
        f"{raw_mbs:,.0f} MB/s ({queue_mbs / raw_mbs:.2f})"
    )
    ratios = forwarding.forwarding_ratios()
    print(f"forwarding: gateway end to end, exporters off {ratios['off'][0]:,.0f} spans/s;")
    for protocol in forwarding.PROTOCOLS:
        on, ratio = ratios[protocol]
        print(
            f"  the three exporters on, traces and logs over {protocol}"
            f"{' (the default)' if protocol == 'http/protobuf' else ''}: {on:,.0f} spans/s, "
            f"on/off {ratio:.2f}   target ≥ 0.8"
        )

    figures_drift = drift.run()
    print("\ndrift, 20 features, 100k reference rows vs 100k current rows (4 shifted):")
    print(
        f"  otelml drift (reference profile built once: {figures_drift['profile_build_s']:.2f} s)"
        f"  {figures_drift['otelml_s'] * 1e3:7.1f} ms  flags {sorted(figures_drift['otelml'])}"
    )
    if "evidently_s" in figures_drift:
        ratio_drift = figures_drift["evidently_s"] / figures_drift["otelml_s"]
        print(
            f"  Evidently DataDriftPreset  {figures_drift['evidently_s'] * 1e3:7.1f} ms  flags "
            f"{sorted(figures_drift['evidently'])}   ×{ratio_drift:.0f}   target ≥ ×50, same flags"
        )
    else:
        print("  Evidently: not installed (make bench creates .bench-venv for it)")
    print(
        f"  gateway drift step, 100 models × 20 features: "
        f"{figures_drift['engine_step_s'] * 1e3:.1f} ms   target < 10 ms"
    )

    print("\n" + ui.report(ui.run()))

    print("\nlabel-free performance, 4 covariate-shifted windows of 5k rows:")
    cbpe.report(cbpe.run())

    print()
    proxy.main()

    print(
        "\napp side: FastAPI + scikit-learn, (a) bare, (b) OpenTelemetry, (c) otelml, 20 features"
    )
    app_side()
    print("\n" + bentoml_overhead.report(bentoml_overhead.run()))

    print()
    print(locust_capacity.report(locust_capacity.run()))


def app_side() -> None:
    for model in ("linear", "gbdt"):
        print("  " + app_overhead.report(model, app_overhead.run(model)))
    print("  targets: (c)/(a) ≥ 0.85, server CPU per request (c)/(a) ≤ 1.2")


#: Sub-benches that run on their own: `python -m bench NAME`.
ALONE = {
    "app": app_side,
    "app-bentoml": lambda: print(bentoml_overhead.report(bentoml_overhead.run())),
    "proxy": proxy.main,
    "locust": lambda: print(locust_capacity.report(locust_capacity.run())),
    "ui": lambda: print(ui.report(ui.run())),
    "app-parts": lambda: print(app_parts.report(app_parts.run())),
    "app-instructions": app_instructions.main,
}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        if sys.argv[1] not in ALONE:
            sys.exit(f"usage: python -m bench [{' | '.join(ALONE)}]")
        ALONE[sys.argv[1]]()
    else:
        main()
