"""Real OpenTelemetry SDK → gateway → /metrics: which service.version drifts, and the
label-free performance estimate of a calibrated output, strictly parsed from OpenMetrics."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelml import profile, semconv
from otelml.gateway.state.exemplars import Exemplars
from tests.conftest import RunningGateway, loopback_config, running_gateway

F = semconv.FEATURE_PREFIX
SPANS = 1500


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-2.0 * x)))


def _send(gw: RunningGateway, version: str, x: np.ndarray) -> set[str]:
    """Spans of one service version, over OTLP/gRPC; returns their trace ids."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "churn-svc", "service.version": version})
    )
    exporter = OTLPSpanExporter(endpoint=gw.grpc_endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256))
    tracer = provider.get_tracer("test")
    ids = set()
    for value in x.tolist():
        with tracer.start_as_current_span("predict") as span:
            span.set_attributes(
                {
                    semconv.MODEL_NAME: "churn",
                    semconv.MODEL_VERSION: "3",
                    F + "x": value,
                    semconv.PREDICTION_PREFIX + "score": float(_sigmoid(np.array(value))),
                    "http.route": "/predict",
                }
            )
            ids.add(f"{span.get_span_context().trace_id:032x}")
    provider.force_flush()
    provider.shutdown()
    return ids


def test_sdk_traffic_names_the_drifting_version_and_estimates_performance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 10_000)
    frame = pd.DataFrame({"x": x, "score": _sigmoid(x), "label": rng.random(10_000) < _sigmoid(x)})
    built = profile.build(frame, model="churn", version="3", predictions=["score"], target="label")
    path = tmp_path / "reference.json"
    profile.save(built, path)
    model = {
        "name": "churn",
        "version": "3",
        "reference": str(path),
        "window": 600,
        "step": 1,
        "drift": {"method": "psi", "min_samples": 500},
    }
    with running_gateway(loopback_config(models=[model])) as gw:
        sent = np.concatenate(
            [rng.normal(0, 1, int(SPANS * 0.7)), rng.normal(1.5, 1, int(SPANS * 0.3))]
        )
        stable = _send(gw, "1", sent[: int(SPANS * 0.7)])
        shifted = _send(gw, "2", sent[int(SPANS * 0.7) :])
        deadline = time.monotonic() + 30
        while True:
            samples = gw.samples()
            key = (
                semconv.DRIFT_ATTRIBUTION,
                frozenset(
                    {
                        "model": "churn",
                        "model_version": "3",
                        "feature": "x",
                        "key": "service.version",
                        "value": "2",
                    }.items()
                ),
            )
            counted = (
                semconv.DRIFT_ATTRIBUTION_OBSERVATIONS + "_total",
                key[1],
            )
            if key in samples and samples[counted].value == int(SPANS * 0.3):
                break
            assert time.monotonic() < deadline, "no attribution on /metrics"
            time.sleep(0.5)
    assert samples[key].value > 0.9
    share = samples[(semconv.DRIFT_ATTRIBUTION_TRAFFIC_SHARE, key[1])].value
    assert share == 0.3
    exemplar = samples[counted].exemplar
    assert exemplar is not None and exemplar.labels["trace_id"] in shifted
    assert exemplar.labels["trace_id"] not in stable
    accuracy = samples[
        (
            semconv.PERFORMANCE_ESTIMATED,
            frozenset(
                {
                    "model": "churn",
                    "model_version": "3",
                    "output": "score",
                    "metric": "accuracy",
                }.items()
            ),
        )
    ].value
    # The labels that would arrive later, drawn from the true P(y | x): the realized
    # accuracy is within 3 standard errors (≈ 0.03 for 1500 rows) of the estimate.
    labels = rng.random(len(sent)) < _sigmoid(sent)
    realized = float(np.mean((_sigmoid(sent) > 0.5) == labels))
    assert abs(accuracy - realized) < 0.035
