"""Confidence-based performance estimation: the pure estimate, and the gateway's per window
against the performance realized from the labels (covariate shift: close; concept drift: not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from otelml import profile, semconv
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.performance.estimation import estimate
from otelml.gateway.state.keys import ModelKey
from otelml.profile.calibration import isotonic
from tests.gateway.drifting_state import drifting_state
from tests.gateway.otlp_builders import traces

MODEL = ModelKey("m", "1")
WINDOW = 4000
#: The stated tolerance: within 3 standard errors, and never more than 0.03 off.
TOLERANCE = 0.03


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-2.0 * x)))


def test_isotonic_is_sklearns_isotonic_regression() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 50):
        values, weights = rng.random(size), rng.integers(1, 20, size).astype(float)
        expected = IsotonicRegression().fit_transform(
            np.arange(size), values, sample_weight=weights
        )
        assert isotonic(values, weights) == pytest.approx(expected, abs=1e-12)


def test_expected_metrics_of_bucket_counts_match_sklearn_on_those_labels() -> None:
    # One draw of labels that exactly meets each bucket's rate: the estimate is its metrics.
    counts = np.array([100, 200, 100, 300, 100])
    rate = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    scores = np.repeat(np.arange(5), counts)
    labels = np.concatenate(
        [np.arange(n) < round(n * r) for n, r in zip(counts, rate, strict=True)]
    )
    predicted = scores >= 3
    result = estimate(counts, rate, [False, False, False, True, True])
    assert result["accuracy"][0] == pytest.approx(accuracy_score(labels, predicted))
    assert result["precision"][0] == pytest.approx(precision_score(labels, predicted))
    assert result["recall"][0] == pytest.approx(recall_score(labels, predicted))
    assert result["f1"][0] == pytest.approx(f1_score(labels, predicted))
    assert result["roc_auc"][0] == pytest.approx(roc_auc_score(labels, scores))
    assert 0 < result["accuracy"][1] < 0.05


def _gateway(tmp_path: Path) -> tuple[GatewayState, DriftEngine]:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 20_000)
    p = _sigmoid(x)
    frame = pd.DataFrame({"x": x, "score": p, "label": rng.random(len(x)) < p})
    reference = profile.build(frame, model="m", version="1", predictions=["score"], target="label")
    return drifting_state(tmp_path, reference, window=1, step=1, attribution={"enabled": False})


def _windows(
    tmp_path: Path, concept_drift: bool
) -> list[tuple[dict[str, float], dict[str, tuple[float, float]]]]:
    """Windows of a covariate-shifted stream: (realized from the labels, estimated)."""
    state, engine = _gateway(tmp_path)
    pipeline = state.pipeline()
    rng = np.random.default_rng(1)
    out = []
    for step, mean in enumerate((0.0, 0.7, 1.4, -0.6)):
        x = rng.normal(mean, 1.0, WINDOW)
        p = _sigmoid(x)
        y = rng.random(WINDOW) < p
        if concept_drift:
            y = np.where(x > 1.0, ~y, y)  # the labels flip for one region of the input
        spans = [
            {
                semconv.MODEL_NAME: "m",
                semconv.MODEL_VERSION: "1",
                "ml.feature.x": a,
                semconv.PREDICTION_PREFIX + "score": b,
            }
            for a, b in zip(x.tolist(), p.tolist(), strict=True)
        ]
        pipeline.consume_traces(traces(spans, first_trace=1 + step * WINDOW), "test")
        engine.evaluate(state.store, float(step))
        predicted = p > 0.5
        realized = {
            "accuracy": accuracy_score(y, predicted),
            "f1": f1_score(y, predicted),
            "roc_auc": roc_auc_score(y, p),
        }
        out.append((realized, engine.estimated.latest[(MODEL, "score")]))
    return out


def test_under_covariate_shift_the_estimate_is_the_realized_performance(tmp_path: Path) -> None:
    for realized, estimated in _windows(tmp_path, concept_drift=False):
        for metric in ("accuracy", "f1", "roc_auc"):
            value, error = estimated[metric]
            assert abs(value - realized[metric]) <= min(TOLERANCE, max(3 * error, 0.01)), metric


def test_under_concept_drift_the_estimate_diverges_from_the_realized(tmp_path: Path) -> None:
    windows = _windows(tmp_path, concept_drift=True)
    gaps = [estimated["accuracy"][0] - realized["accuracy"] for realized, estimated in windows]
    # The unshifted window has few inputs above 1: the flip costs little there. Where the
    # shift brings traffic into the flipped region, the estimate (which cannot see the flip)
    # is far above the realized accuracy: more than 0.1 and many standard errors.
    assert gaps[2] > 0.25
    assert gaps[2] > 10 * windows[2][1]["accuracy"][1]
    assert gaps[1] > 0.1


def test_the_estimate_is_exposed_beside_its_standard_error(tmp_path: Path) -> None:
    state, engine = _gateway(tmp_path)
    spans = [
        {
            semconv.MODEL_NAME: "m",
            semconv.MODEL_VERSION: "1",
            semconv.PREDICTION_PREFIX + "score": v,
        }
        for v in (0.1, 0.2, 0.8, 0.9)
    ]
    state.pipeline().consume_traces(traces(spans), "test")
    engine.evaluate(state.store, 0.0)
    families = {f.name: f for f in state.families()}
    estimated = families[semconv.PERFORMANCE_ESTIMATED]
    by_metric = {dict(s.labels)["metric"]: s for s in estimated.samples}
    assert set(by_metric) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert dict(by_metric["accuracy"].labels)["output"] == "score"
    assert by_metric["accuracy"].value == pytest.approx(
        engine.estimated.latest[(MODEL, "score")]["accuracy"][0]
    )
    assert len(families[semconv.PERFORMANCE_ESTIMATED_STDERR].samples) == 5
