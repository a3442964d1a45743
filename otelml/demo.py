"""`otelml demo`: a gateway, a stand-in churn model sending real OTLP, and a drift phase.

Everything runs on this machine without Docker: a reference profile is built from
synthetic training data, the gateway starts with it on the standard ports, and a model
service (the OpenTelemetry SDK with the OTLP/gRPC exporter, as an instrumented app would use
it) sends prediction spans, in single and batch requests. Halfway through, the live inputs
drift. The summary is read back from the gateway's own /metrics, exemplars included.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from otelml import profile, semconv
from otelml.config import parse
from otelml.gateway.app import BoundPorts, Gateway

MODEL, VERSION = "churn", "3"
CONTRACTS = ["month-to-month", "one-year", "two-year"]
COUNTRIES = ["DE", "FR", "US", "GB", "ES"]


def make_inputs(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """Synthetic churn-model inputs; `drifted` shifts age up and the contract mix."""
    contract_p = [0.2, 0.3, 0.5] if drifted else [0.55, 0.25, 0.2]
    return pd.DataFrame(
        {
            "age": rng.normal(55 if drifted else 40, 11, rows).round(1),
            "tenure_months": rng.exponential(24, rows).round(),
            "monthly_charges": rng.normal(70, 20, rows).round(2),
            "support_calls": rng.poisson(1.5, rows).astype(float),
            "contract": rng.choice(CONTRACTS, rows, p=contract_p),
            "country": rng.choice(COUNTRIES, rows, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
        }
    )


def predict(inputs: pd.DataFrame) -> np.ndarray:
    """A fixed logistic model: the 'trained' churn scorer of the demo."""
    logit = (
        -1.0
        - 0.03 * (inputs["age"] - 40)
        - 0.04 * inputs["tenure_months"]
        + 0.02 * (inputs["monthly_charges"] - 70)
        + 0.4 * inputs["support_calls"]
        + inputs["contract"].map({"month-to-month": 1.2, "one-year": 0.0, "two-year": -1.0})
    )
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


def _start_gateway(
    reference: Path, duration: float
) -> tuple[Gateway, BoundPorts, asyncio.AbstractEventLoop]:
    window = max(2.0, duration / 4)  # the drifted half holds two full windows
    config = parse(
        {
            "models": [
                {
                    "name": MODEL,
                    "version": VERSION,
                    "reference": str(reference),
                    "window": window,
                    "step": 1,
                    "drift": {"min_samples": 200},
                    "ground_truth": {"ttl": "1h"},
                }
            ]
        }
    )
    gateway = Gateway(config)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="otelml-gateway", daemon=True).start()
    ports = asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=30)

    async def start_drift() -> None:
        gateway.start_drift()

    asyncio.run_coroutine_threadsafe(start_drift(), loop).result(timeout=30)
    return gateway, ports, loop


def _post_ground_truth(http_port: int, truths: list[dict[str, object]]) -> None:
    """Labels arrive later, in bulk, from another system: POST /v1/ground_truth."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/v1/ground_truth",
        data=json.dumps(truths).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _send_traffic(
    endpoint: str, http_port: int, duration: float, rng: np.random.Generator
) -> dict[str, int]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "churn-model"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    tracer = provider.get_tracer("otelml.demo")
    sent = {"spans": 0, "rows": 0, "drifted_rows": 0, "labels": 0}
    truths: list[dict[str, object]] = []
    start = time.monotonic()
    next_report = start + 5
    while (elapsed := time.monotonic() - start) < duration:
        drifted = elapsed > duration / 2
        batch = 16 if sent["spans"] % 10 == 0 else 1
        inputs = make_inputs(rng, batch, drifted)
        scores = predict(inputs)
        attributes: dict[str, Any] = {
            semconv.MODEL_NAME: MODEL,
            semconv.MODEL_VERSION: VERSION,
            semconv.PREDICTION: scores.tolist() if batch > 1 else float(scores[0]),
        }
        for column in inputs.columns:
            values = inputs[column].tolist()
            attributes[semconv.FEATURE_PREFIX + column] = values if batch > 1 else values[0]
        if batch == 1:
            prediction_id = f"req-{sent['spans']}"
            attributes[semconv.PREDICTION_ID] = prediction_id
            # What really happened, known weeks later in real life: churn with the model's odds.
            truths.append({"prediction_id": prediction_id, "value": int(rng.uniform() < scores[0])})
        with tracer.start_as_current_span("predict", attributes=attributes):
            time.sleep(0.001)
        if len(truths) >= 200:
            provider.force_flush(5_000)
            _post_ground_truth(http_port, truths)
            sent["labels"] += len(truths)
            truths = []
        sent["spans"] += 1
        sent["rows"] += batch
        sent["drifted_rows"] += batch if drifted else 0
        if time.monotonic() >= next_report:
            phase = "DRIFT" if drifted else "normal"
            print(
                f"  t={elapsed:5.1f}s  phase={phase:6s}  spans={sent['spans']}  rows={sent['rows']}"
            )
            next_report += 5
        time.sleep(0.002)
    provider.force_flush(10_000)
    provider.shutdown()
    if truths:
        _post_ground_truth(http_port, truths)
        sent["labels"] += len(truths)
    return sent


def _scrape(admin_port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], Any]:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample
    return samples


def _moved_most(live: np.ndarray, reference: np.ndarray) -> tuple[int, float, float]:
    live_share = live / max(float(live.sum()), 1.0)
    ref_share = reference / max(float(reference.sum()), 1.0)
    moved = int(np.argmax(np.abs(live_share - ref_share)))
    return moved, float(ref_share[moved]), float(live_share[moved])


def _summary(reference: profile.Profile, samples: dict[Any, Any]) -> None:
    """Per feature: the drift test's verdict, the bucket whose share moved most, and a trace
    that landed in it; then the performance from the ground truth joined so far."""
    print(
        f"\n{'feature':16s} {'drift test':>18s} {'verdict':>8s} {'bucket that moved most':>24s}"
        f" {'reference':>9s} {'live':>6s}  trace"
    )
    for name, feature in reference.features.items():
        if isinstance(feature, profile.NumericProfile):
            buckets = sorted(
                (float(dict(labels)["le"]), sample)
                for (metric, labels), sample in samples.items()
                if metric == "otelml_feature_value_bucket" and ("feature", name) in labels
            )
            live = np.diff(np.r_[0.0, [s.value for _, s in buckets]])
            moved, ref_share, live_share = _moved_most(live, np.asarray(feature.counts, float))
            le = buckets[moved][0]
            bucket = "le=+Inf" if math.isinf(le) else f"le={le:g}"
            exemplar = buckets[moved][1].exemplar
        else:
            labels_of = [*feature.categories, semconv.OTHER_CATEGORY]
            found = {
                dict(labels)["category"]: sample
                for (metric, labels), sample in samples.items()
                if metric == "otelml_feature_category_total" and ("feature", name) in labels
            }
            # `__other__` is exposed only once something fell into it
            live = np.asarray([found[c].value if c in found else 0 for c in labels_of], float)
            moved, ref_share, live_share = _moved_most(live, np.asarray(feature.counts, float))
            bucket = labels_of[moved]
            exemplar = found[bucket].exemplar if bucket in found else None
        test, verdict = _verdict(samples, name)
        trace = exemplar.labels["trace_id"] if exemplar else "-"
        print(
            f"{name:16s} {test:>18s} {verdict:>8s} {bucket:>24s} {ref_share:9.3f}"
            f" {live_share:6.3f}  {trace}"
        )
    print("\nEach trace id opens, in Tempo/Grafana, a request whose value fell in that bucket.")
    performance = {
        dict(labels)["metric"]: sample.value
        for (metric, labels), sample in samples.items()
        if metric == "otelml_performance" and "class" not in dict(labels)
    }
    if performance:
        print(
            "performance over the joined ground truth: "
            + ", ".join(f"{k}={v:.3f}" for k, v in sorted(performance.items()))
        )


def _verdict(samples: dict[Any, Any], feature: str) -> tuple[str, str]:
    """The drift test's score of the last window and its verdict, as /metrics shows them."""
    scores = {
        dict(labels)["method"]: sample.value
        for (metric, labels), sample in samples.items()
        if metric == "otelml_drift_score" and ("feature", feature) in labels
    }
    detected = [
        sample.value
        for (metric, labels), sample in samples.items()
        if metric == "otelml_drift_detected" and ("feature", feature) in labels
    ]
    if not detected:
        return "-", "n/a"
    method = next((m for m in scores if m != "psi"), "psi")
    return f"{method}={scores[method]:.3f}", "DRIFT" if detected[0] else "ok"


def run(duration: float = 20.0, workdir: str | None = None) -> int:
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="otelml-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    training = make_inputs(rng, 20_000, drifted=False)
    training["prediction"] = predict(training)
    reference = profile.build(training, model=MODEL, version=VERSION, predictions=["prediction"])
    reference_path = directory / "reference.json"
    profile.save(reference, reference_path)
    print(f"reference profile: {reference_path} ({reference.rows} training rows)")
    try:
        gateway, ports, loop = _start_gateway(reference_path, duration)
    except OSError as exc:
        print(f"otelml demo: {exc} (is another gateway running?)")
        return 1
    print(
        f"gateway: OTLP gRPC :{ports.grpc}  OTLP HTTP :{ports.http}  "
        f"metrics http://127.0.0.1:{ports.admin}/metrics"
    )
    print(f"sending model traffic for {duration:g}s (inputs drift halfway)…")
    try:
        assert ports.http is not None
        sent = _send_traffic(f"127.0.0.1:{ports.grpc}", ports.http, duration, rng)
        time.sleep(1.5)  # one more drift step over the last requests
        assert ports.admin is not None
        samples = _scrape(ports.admin)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(grace=1.0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
    accepted = samples[
        ("otelml_receiver_accepted_spans_total", frozenset({"transport": "grpc"}.items()))
    ].value
    age_rows = max(
        s.value
        for (metric, labels), s in samples.items()
        if metric == "otelml_feature_value_bucket" and ("feature", "age") in labels
    )
    print(
        f"\nsent {sent['spans']} spans / {sent['rows']} rows ({sent['drifted_rows']} drifted); "
        f"gateway accepted {int(accepted)} spans and counted {int(age_rows)} age values"
    )
    _summary(reference, samples)
    return 0 if accepted == sent["spans"] and age_rows == sent["rows"] else 1
