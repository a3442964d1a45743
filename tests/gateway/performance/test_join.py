"""Ground truth joined out of order, duplicated, unknown, after TTL: each counted; metrics exact."""

from __future__ import annotations

import hashlib
import time
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from sklearn import metrics as sk

from otelml import semconv
from otelml.config import parse
from otelml.gateway.connectors import ground_truth
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.performance.tracker import GroundTruthTracker
from otelml.gateway.pipeline import Pipeline
from otelml.gateway.state.keys import ModelKey
from tests.conftest import loopback_config, running_gateway
from tests.gateway.otlp_builders import logs, traces

M = semconv.MODEL_NAME
V = semconv.MODEL_VERSION
ID = semconv.PREDICTION_ID


def _pipeline(ttl: str = "1h", max_predictions: int = 1000) -> tuple[GatewayState, Pipeline]:
    config = parse(
        {
            "models": [
                {
                    "name": "clf",
                    "version": "2",
                    "window": "1h",
                    "step": "1m",
                    "ground_truth": {"ttl": ttl, "max_predictions": max_predictions},
                }
            ]
        }
    )
    state = GatewayState.create()
    state.ground_truth = GroundTruthTracker(config.models)
    return state, state.pipeline()


def _metrics(state: GatewayState) -> dict[Any, Any]:
    assert state.ground_truth is not None
    return state.ground_truth.metrics(now=time.time())


def test_out_of_order_duplicates_and_unknown_ids_are_counted_and_metrics_exact() -> None:
    state, pipeline = _pipeline()
    rng = np.random.default_rng(5)
    truth = rng.choice(["a", "b", "c"], 60).tolist()
    predicted = [t if rng.uniform() < 0.7 else str(rng.choice(["a", "b", "c"])) for t in truth]
    # Ground truth for the first 10 arrives BEFORE the predictions (out of order), on log records.
    pipeline.consume_logs(
        logs([{ID: f"p{i}", semconv.GROUND_TRUTH: truth[i]} for i in range(10)]), "test"
    )
    pipeline.consume_traces(
        traces(
            [{M: "clf", V: "2", ID: f"p{i}", semconv.PREDICTION: predicted[i]} for i in range(60)]
        ),
        "test",
    )
    # The rest arrives after, in spans; p10 twice (a duplicate), and 3 ids nobody predicted.
    late = [{ID: f"p{i}", semconv.GROUND_TRUTH: truth[i]} for i in range(10, 60)]
    late.append({ID: "p10", semconv.GROUND_TRUTH: truth[10]})
    late += [{ID: f"ghost{i}", semconv.GROUND_TRUTH: "a"} for i in range(3)]
    pipeline.consume_traces(traces(late, first_trace=1000), "test")
    tracker = state.ground_truth
    assert tracker is not None
    model = ModelKey("clf", "2")
    assert tracker.matched[(model, "prediction")] == 60
    assert tracker.unmatched[("clf", "2", "prediction", "duplicate")] == 1
    assert len(tracker.pending) == 3  # the ghosts wait for their TTL
    pairs, got = _metrics(state)[(model, "prediction")]
    assert pairs == 60
    assert got[("accuracy", "")] == pytest.approx(sk.accuracy_score(truth, predicted))
    assert got[("f1", "__macro__")] == pytest.approx(
        sk.f1_score(truth, predicted, average="macro", zero_division=0)
    )
    tracker.expire(now=time.time() + 3601)
    assert tracker.unmatched[("", "", "prediction", "unknown_id")] == 3


def test_default_ids_are_trace_and_row_for_batches_and_regression_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, pipeline = _pipeline()
    predictions = [[1.0, 2.0, 3.0], [10.0, 20.0]]
    pipeline.consume_traces(
        traces([{M: "clf", V: "2", semconv.PREDICTION_PREFIX + "price": p} for p in predictions]),
        "test",
    )
    truths = {f"{1:032x}:0": 1.5, f"{1:032x}:2": 2.0, f"{2:032x}:1": 25.0}
    pipeline.consume_traces(
        traces(
            [{ID: k, semconv.GROUND_TRUTH_PREFIX + "price": v} for k, v in truths.items()],
            first_trace=50,
        ),
        "test",
    )
    _, got = _metrics(state)[(ModelKey("clf", "2"), "price")]
    y, y_hat = [1.5, 2.0, 25.0], [1.0, 3.0, 20.0]
    assert got[("mae", "")] == pytest.approx(sk.mean_absolute_error(y, y_hat))
    assert got[("rmse", "")] == pytest.approx(np.sqrt(sk.mean_squared_error(y, y_hat)))
    assert got[("mape", "")] == pytest.approx(sk.mean_absolute_percentage_error(y, y_hat))


def test_ttl_and_capacity_evict_and_count(monkeypatch: pytest.MonkeyPatch) -> None:
    state, pipeline = _pipeline(ttl="10s", max_predictions=3)
    clock = [1000.0]
    monkeypatch.setattr(ground_truth, "time", SimpleNamespace(time=lambda: clock[0]))
    pipeline.consume_traces(
        traces([{M: "clf", V: "2", ID: f"p{i}", semconv.PREDICTION: "a"} for i in range(5)]),
        "test",
    )
    tracker = state.ground_truth
    assert tracker is not None
    assert tracker.evicted[("clf", "2", "capacity")] == 2  # p0, p1 pushed out
    clock[0] += 11  # past the TTL: p2..p4 expire when the truth arrives
    tracker.expire(clock[0])
    assert tracker.evicted[("clf", "2", "ttl")] == 3
    pipeline.consume_traces(traces([{ID: "p3", semconv.GROUND_TRUTH: "a"}]), "test")
    assert tracker.matched[(ModelKey("clf", "2"), "prediction")] == 0
    assert len(tracker.pending) == 1


def _ground_truth_gateway() -> Any:
    """A loopback gateway joining ground truth for model clf v2."""
    return running_gateway(
        loopback_config(models=[{"name": "clf", "version": "2", "ground_truth": {"ttl": "1h"}}])
    )


def _post_predictions(gw: Any, spans: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{gw.http_url}/v1/traces",
        content=traces(spans),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200


def test_post_ground_truth_json_and_exposition() -> None:
    with _ground_truth_gateway() as gw:
        spans = [
            {M: "clf", V: "2", ID: f"q{i}", semconv.PREDICTION: p}
            for i, p in enumerate(["yes", "no", "yes", "yes"])
        ]
        _post_predictions(gw, spans)
        body = [
            {"prediction_id": "q0", "value": "yes"},
            {"prediction_id": "q1", "value": "yes"},
            {"prediction_id": "q2", "value": "yes", "output": "prediction", "model": "clf"},
            {"prediction_id": "q3", "value": "no"},
        ]
        response = httpx.post(f"{gw.http_url}/v1/ground_truth", json=body)
        assert response.status_code == 200 and response.json() == {"accepted": 4}
        bad = httpx.post(f"{gw.http_url}/v1/ground_truth", json=[{"value": 1}])
        assert bad.status_code == 400 and "prediction_id" in bad.json()["message"]
        wrong = httpx.post(
            f"{gw.http_url}/v1/ground_truth", content=b"x", headers={"Content-Type": "text/csv"}
        )
        assert wrong.status_code == 415
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(gw.scrape())
            for s in f.samples
        }
    base = {"model": "clf", "model_version": "2", "output": "prediction"}

    def perf(metric: str, cls: str | None = None) -> float:
        labels = {**base, "metric": metric, **({"class": cls} if cls else {})}
        return float(samples[("otelml_performance", frozenset(labels.items()))])

    assert perf("accuracy") == 0.5  # yes/yes, no/yes, yes/yes, yes/no
    assert perf("precision", "yes") == pytest.approx(
        sk.precision_score(
            ["yes", "yes", "yes", "no"], ["yes", "no", "yes", "yes"], pos_label="yes"
        )
    )
    assert samples[("otelml_ground_truth_total", frozenset(base.items()))] == 4
    assert samples[("otelml_performance_window_pairs", frozenset(base.items()))] == 4


def test_long_prediction_ids_join_whole_and_are_kept_as_digests() -> None:
    """Ids past the label length share their first 256 characters: cut, they would collide;
    whole, each finds its own truth (sent as JSON, unaware of any limit)."""
    ids = ["x" * 256 + "-first", "x" * 256 + "-second"]
    with _ground_truth_gateway() as gw:
        spans = [
            {M: "clf", V: "2", ID: ids[0], semconv.PREDICTION: "yes"},
            {M: "clf", V: "2", ID: ids[1], semconv.PREDICTION: "no"},
        ]
        _post_predictions(gw, spans)
        truth = [
            {"prediction_id": ids[0], "value": "yes"},
            {"prediction_id": ids[1], "value": "no"},
        ]
        assert httpx.post(f"{gw.http_url}/v1/ground_truth", json=truth).json() == {"accepted": 2}
        tracker = gw.gateway.state.ground_truth
        samples = gw.samples()
    assert tracker is not None
    assert {key for key, _ in tracker.joined} == {
        "sha256:" + hashlib.sha256(i.encode()).hexdigest() for i in ids
    }
    base = {"model": "clf", "model_version": "2", "output": "prediction"}
    assert samples[("otelml_ground_truth_total", frozenset(base.items()))].value == 2
    accuracy = frozenset({**base, "metric": "accuracy"}.items())
    assert samples[("otelml_performance", accuracy)].value == 1.0
    assert not any(name == semconv.RECEIVER_TRUNCATED + "_total" for name, _ in samples)


def test_state_render_without_ground_truth_has_no_performance_families() -> None:
    assert "otelml_performance" not in render(GatewayState.create().families(), openmetrics=True)


def test_performance_per_segment() -> None:
    config = parse(
        {
            "models": [
                {
                    "name": "clf",
                    "version": "2",
                    "segments": ["country"],
                    "ground_truth": {"ttl": "1h"},
                }
            ]
        }
    )
    from otelml.gateway.validation import load_models

    state = GatewayState.create(models=load_models(config))
    state.ground_truth = GroundTruthTracker(config.models)
    pipeline = state.pipeline()
    spans = [
        {
            M: "clf",
            V: "2",
            ID: "a",
            semconv.PREDICTION: "yes",
            semconv.FEATURE_PREFIX + "country": "DE",
        },
        {
            M: "clf",
            V: "2",
            ID: "b",
            semconv.PREDICTION: "no",
            semconv.FEATURE_PREFIX + "country": "DE",
        },
        {
            M: "clf",
            V: "2",
            ID: "c",
            semconv.PREDICTION: "yes",
            semconv.FEATURE_PREFIX + "country": "FR",
        },
    ]
    pipeline.consume_traces(traces(spans), "test")
    pipeline.consume_traces(
        traces(
            [
                {ID: i, semconv.GROUND_TRUTH: v}
                for i, v in (("a", "yes"), ("b", "yes"), ("c", "yes"))
            ],
            first_trace=10,
        ),
        "test",
    )
    results = _metrics(state)
    whole = results[(ModelKey("clf", "2"), "prediction")]
    de = results[(ModelKey("clf", "2", ("country", "DE")), "prediction")]
    fr = results[(ModelKey("clf", "2", ("country", "FR")), "prediction")]
    assert (whole[0], de[0], fr[0]) == (3, 2, 1)
    assert whole[1][("accuracy", "")] == pytest.approx(2 / 3)
    assert de[1][("accuracy", "")] == 0.5 and fr[1][("accuracy", "")] == 1.0
    text = render(state.families(), openmetrics=True)
    assert 'otelml_segment_performance{model="clf",model_version="2",output="prediction",' in text
