"""The exposition of a fixed traffic, byte for byte: text 0.0.4 and OpenMetrics.

The golden files were written by the gateway before its modules were rearranged; the same
requests must keep producing exactly the same /metrics, for one process and for two workers'
states merged. A change here is a change every scraper, dashboard and rule sees. To accept an
intended change, rewrite them with `OTELML_WRITE_GOLDEN=1 pytest` on this file and review the
diff line by line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml import profile, semconv
from otelml.config import GatewayConfig, parse
from otelml.gateway.app import Gateway
from otelml.gateway.consumer import GroundTruthItem
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.exemplars import Exemplars
from tests.gateway.otlp_builders import logs, traces

GOLDEN = Path(__file__).parent / "golden"
F = semconv.FEATURE_PREFIX
#: The drift engine's clock: evaluations at fixed instants, one step apart.
STEP_S = 60.0


@pytest.fixture(autouse=True)
def _every_exemplar_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Exemplar refreshes are throttled by wall-clock time: off, so every run keeps the same ones.
    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)


def _config(tmp_path: Path, queue: str) -> GatewayConfig:
    rng = np.random.default_rng(42)
    n = 2000
    training = pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, n),
            "tenure": rng.exponential(12.0, n),
            "country": rng.choice(["DE", "FR", "US"], n, p=[0.5, 0.3, 0.2]),
            "score": rng.uniform(0.0, 1.0, n),
            "label": rng.choice(["stay", "churn"], n, p=[0.8, 0.2]),
        }
    )
    reference = tmp_path / "reference.json"
    if not reference.exists():
        built = profile.build(training, model="churn", version="3", predictions=["score", "label"])
        profile.save(built, reference)
    return parse(
        {
            "models": [
                {
                    "name": "churn",
                    "version": "3",
                    "reference": str(reference),
                    "window": 3 * STEP_S,
                    "step": STEP_S,
                    "segments": ["country"],
                    "drift": {"min_samples": 20, "features": {"tenure": {"method": "psi"}}},
                    "ground_truth": {"ttl": 86_400, "max_predictions": 1000},
                },
                {"name": "plain", "window": 3 * STEP_S, "step": STEP_S},
            ],
            "exporters": {
                "traces": {"endpoint": "http://127.0.0.1:9/", "protocol": "grpc"},
                "logs": {"endpoint": "http://127.0.0.1:9/otlp"},
                "metrics": {"remote_write": "http://127.0.0.1:9/api/v1/write"},
            },
            "queue": {"directory": str(tmp_path / queue)},
            "limits": {"max_series": 1200, "max_categories": 4},
            "redaction": {"enabled": True, "patterns": {"ticket": "TCK-[0-9]+"}},
        }
    )


def _churn_span(rng: np.random.Generator, shift: float, row: int) -> dict[str, Any]:
    country = ["DE", "FR", "US", "ZZ"][row % 4]
    return {
        semconv.MODEL_NAME: "churn",
        semconv.MODEL_VERSION: "3",
        F + "x": float(np.round(rng.normal(shift, 1.0), 6)),
        F + "tenure": float(np.round(rng.exponential(12.0 + 10 * shift), 6)),
        F + "country": country,
        semconv.PREDICTION_PREFIX + "score": float(np.round(rng.uniform(0.0, 1.0), 6)),
        semconv.PREDICTION_PREFIX + "label": "churn" if row % 3 == 0 else "stay",
        "note": f"contact a{row}@example.com about TCK-{row}",
    }


def _requests(part: int, parts: int) -> Iterator[tuple[str, Any]]:
    """The traffic, as ("traces" | "logs" | "metrics" | "truth" | "drift", payload) steps.

    With `parts` > 1 only every `parts`-th request is yielded (a worker's share); drift
    steps are yielded to every part.
    """
    rng = np.random.default_rng(7)
    steps: list[tuple[str, Any]] = []
    first = 1
    for batch in range(6):
        shift = 0.0 if batch < 3 else 1.5
        spans = [_churn_span(rng, shift, row) for row in range(40)]
        steps.append(("traces", traces(spans, service="churn-svc", first_trace=first)))
        first += len(spans)
        steps.append(("drift", batch))
    # Unknown model, no reference: default buckets, strings, bools, arrays (a batch span),
    # invalid values of every reason, and a span without ids (rejected).
    odd: list[dict[str, Any]] = [
        {semconv.MODEL_NAME: "adhoc", F + "a": 1.5, F + "flag": True, F + "city": "Paris"},
        {semconv.MODEL_NAME: "adhoc", F + "a": float("nan"), F + "city": "Rome"},
        {semconv.MODEL_NAME: "adhoc", F + "a": "text", F + "city": 3},
        {
            semconv.MODEL_NAME: "adhoc",
            F + "a": [-2.5, 0.0, 7.25],
            F + "city": ["Oslo", "Bergen", "Oslo"],
            semconv.PREDICTION: [0.1, 0.9, 0.4],
        },
        {semconv.MODEL_NAME: "churn", semconv.MODEL_VERSION: "3", F + "country": "MARS"},
    ]
    steps.append(("traces", traces(odd, service="adhoc-svc", name="batch", first_trace=first)))
    first += len(odd)
    steps.append(("traces", _without_ids()))
    # Wide features on a log record, and ground truth on later log records.
    steps.append(
        (
            "logs",
            logs(
                [
                    {semconv.MODEL_NAME: "plain", F + "w": float(i), F + "colour": "red"}
                    for i in range(10)
                ],
                first_trace=first,
            ),
        )
    )
    truths: list[dict[str, Any]] = [
        {semconv.PREDICTION_ID: f"{trace:032x}:0", semconv.GROUND_TRUTH_PREFIX + "label": "churn"}
        for trace in range(1, 200, 3)
    ]
    truths += [
        {semconv.PREDICTION_ID: f"{trace:032x}:0", semconv.GROUND_TRUTH_PREFIX + "score": 0.5}
        for trace in range(1, 100, 7)
    ]
    steps.append(("logs", logs(truths, first_trace=10_000)))
    steps.append(
        (
            "truth",
            [
                GroundTruthItem(prediction_id=f"{1:032x}:0", value="stay", output="label"),
                GroundTruthItem(prediction_id=f"{2:032x}:0", value="stay", output="label"),
                GroundTruthItem(prediction_id="never-seen", value=1, output="label"),
            ],
        )
    )
    steps.append(("metrics", _metrics()))
    # Span metrics overflow the series budget once enough distinct span names arrive.
    many = traces([{}] * 3, service="names", name="n0", first_trace=20_000)
    for i in range(1, 30):
        many += traces([{}], service="names", name=f"n{i}", first_trace=20_000 + i)
    steps.append(("traces", many))
    steps.append(("drift", 6))
    requests = 0
    for kind, payload in steps:
        if kind == "drift":
            yield kind, payload
            continue
        if requests % parts == part:
            yield kind, payload
        requests += 1


def _without_ids() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(traces([{semconv.MODEL_NAME: "adhoc"}] * 2))
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    return request.SerializeToString()


def _metrics() -> bytes:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="requests")
    for value in (1, 2, 3):
        metric.gauge.data_points.add(as_int=value, time_unix_nano=1_700_000_000_000_000_000)
    return request.SerializeToString()


def _feed(gateway: Gateway, part: int = 0, parts: int = 1, drift: bool = True) -> None:
    pipeline = gateway.pipeline
    for kind, payload in _requests(part, parts):
        if kind == "traces":
            pipeline.consume_traces(payload, "grpc")
        elif kind == "logs":
            pipeline.consume_logs(payload, "http")
        elif kind == "metrics":
            pipeline.consume_metrics(payload, "http")
        elif kind == "truth":
            pipeline.consume_ground_truth(payload)
        elif drift and gateway.state.drift is not None:
            gateway.state.drift.evaluate(gateway.state.store, 1000.0 + payload * STEP_S)
    gateway.refresh_exporters()


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OTELML_WRITE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden exposition"


def _both(state: GatewayState, stem: str) -> None:
    text = render(state.families(), openmetrics=False)
    openmetrics = render(state.families(), openmetrics=True)
    list(text_string_to_metric_families(openmetrics))  # strictly valid OpenMetrics
    _check(f"{stem}.txt", text)
    _check(f"{stem}.openmetrics.txt", openmetrics)


def test_one_process_exposition_is_unchanged(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path, "queue"))
    _feed(gateway)
    _both(gateway.state, "one_process")


def test_merged_workers_exposition_is_unchanged(tmp_path: Path) -> None:
    config = _config(tmp_path, "queue")
    workers = [Gateway(config, worker=i) for i in range(2)]
    for index, worker in enumerate(workers):
        _feed(worker, index, len(workers), drift=False)
    template = Gateway(config, forward=False)
    limits = config.limits
    merged = GatewayState.create(
        limits.max_series, template.state.store.models, limits.max_categories
    )
    for worker in workers:
        merged.merge(worker.state)
    _both(merged, "merged_workers")
