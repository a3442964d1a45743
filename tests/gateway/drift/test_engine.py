"""The drift engine on a synthetic stream: the shifted features, and only they, get flagged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from otelml import profile, semconv
from otelml.config import parse
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.pipeline import Pipeline
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.keys import ModelKey, ModelProfile, SeriesKey
from tests.gateway.drifting_state import drifting_state
from tests.gateway.otlp_builders import traces

F = semconv.FEATURE_PREFIX
CATEGORIES = ["a", "b", "c", "d", "e"]
BASE_P = [0.3, 0.25, 0.2, 0.15, 0.1]
SHIFTED_P = [0.1, 0.15, 0.2, 0.25, 0.3]
NUMERIC = {f"n{i}": (10.0 * i, 1.0 + i) for i in range(6)}  # name → (mean, std)


def _frame(rng: np.random.Generator, rows: int, shifted: bool) -> pd.DataFrame:
    data = {}
    for name, (mean, std) in NUMERIC.items():
        shift = 0.6 * std if shifted and name == "n1" else 0.0
        data[name] = rng.normal(mean + shift, std, rows)
    for name in ("c0", "c1"):
        p = SHIFTED_P if shifted and name == "c1" else BASE_P
        data[name] = rng.choice(CATEGORIES, rows, p=p)
    return pd.DataFrame(data)


def _setup(reference_rows: int, tmp_path: Path) -> tuple[GatewayState, Pipeline, DriftEngine]:
    rng = np.random.default_rng(0)
    reference = profile.build(_frame(rng, reference_rows, False), model="m", version="1")
    state, engine = drifting_state(
        tmp_path,
        reference,
        window=5,
        step=1,
        drift={"min_samples": 1000},
        attribution={"enabled": False},
    )
    return state, state.pipeline(), engine


def _send_step(pipeline: Pipeline, rng: np.random.Generator, step: int, shifted: bool) -> set[int]:
    """400 rows as 8 batch spans of 50; returns the trace ids (as ints) it used."""
    frame = _frame(rng, 400, shifted)
    spans = []
    for chunk in range(8):
        rows = frame.iloc[chunk * 50 : (chunk + 1) * 50]
        attributes: dict[str, Any] = {semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1"}
        for column in frame.columns:
            attributes[F + column] = rows[column].tolist()
        spans.append(attributes)
    first = 1 + step * 100
    pipeline.consume_traces(traces(spans, first_trace=first), "test")
    return set(range(first, first + len(spans)))


def test_two_shifted_features_of_eight_are_flagged_and_no_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps here are microseconds apart: refresh exemplars on every request, as minutes would.
    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)
    state, pipeline, engine = _setup(5000, tmp_path)
    rng = np.random.default_rng(1)
    shift_at, steps = 10, 40
    flagged_at: dict[str, int] = {}
    false_alarms = verdicts_unshifted = 0
    shifted_traces: set[int] = set()
    for step in range(steps):
        sent = _send_step(pipeline, rng, step, shifted=step >= shift_at)
        if step >= shift_at:
            shifted_traces |= sent
        engine.evaluate(state.store, now=float(step))
        for (_model, series), verdict in engine.verdicts.items():
            if verdict.detected is None:
                continue
            if series.name in ("n1", "c1") and step >= shift_at:
                if verdict.detected:
                    flagged_at.setdefault(series.name, step)
            else:
                verdicts_unshifted += 1
                false_alarms += int(verdict.detected)
    # Auto methods for a 5000-row reference: normed Wasserstein (numeric), JS (categorical).
    methods = {s.name: v.method for (_, s), v in engine.verdicts.items()}
    assert methods == {**{n: "wasserstein" for n in NUMERIC}, "c0": "js", "c1": "js"}
    # Flagged within two windows (10 steps) of the shift: in fact within the first window.
    assert set(flagged_at) == {"n1", "c1"}
    assert all(shift_at <= step < shift_at + 10 for step in flagged_at.values()), flagged_at
    # The unshifted six (and the shifted two before the shift) never cross: 0 false alarms
    # over the measured verdicts.
    assert verdicts_unshifted > 200
    assert false_alarms == 0, false_alarms / verdicts_unshifted
    n1 = engine.verdicts[(ModelKey("m", "1"), SeriesKey("feature", "n1"))]
    assert n1.events == 1  # crossed once, stayed drifted
    assert n1.exemplar is not None
    assert int(n1.exemplar.trace_id, 16) in shifted_traces


def test_window_forgets_old_steps_and_min_samples_withholds_the_verdict(tmp_path: Path) -> None:
    state, pipeline, engine = _setup(5000, tmp_path)
    rng = np.random.default_rng(2)
    key = (ModelKey("m", "1"), SeriesKey("feature", "n1"))
    _send_step(pipeline, rng, 0, shifted=False)
    # A model span without features: missing values, not observations.
    pipeline.consume_traces(traces([{semconv.MODEL_NAME: "m", semconv.MODEL_VERSION: "1"}]), "t")
    engine.evaluate(state.store, now=0.0)
    assert engine.verdicts[key].observations == 400
    assert engine.verdicts[key].detected is None  # 400 < min_samples (1000): no verdict
    assert engine.verdicts[key].scores == {}
    for step in (1, 2):
        _send_step(pipeline, rng, step, shifted=False)
        engine.evaluate(state.store, now=float(step))
    assert engine.verdicts[key].observations == 1200
    assert engine.verdicts[key].detected is False
    for step in range(3, 8):
        _send_step(pipeline, rng, step, shifted=True)
        engine.evaluate(state.store, now=float(step))
    assert engine.verdicts[key].observations == 2000  # the window holds the last 5 steps only
    assert engine.verdicts[key].detected is True
    # Five quiet steps: the window empties and the verdict is withheld again.
    for step in range(8, 13):
        engine.evaluate(state.store, now=float(step))
    assert engine.verdicts[key].observations == 0
    assert engine.verdicts[key].detected is None


def test_a_small_reference_uses_statistical_tests(tmp_path: Path) -> None:
    state, pipeline, engine = _setup(800, tmp_path)
    rng = np.random.default_rng(3)
    for step in range(4):
        _send_step(pipeline, rng, step, shifted=True)
        engine.evaluate(state.store, now=float(step))
    verdicts = {s.name: v for (_, s), v in engine.verdicts.items()}
    assert verdicts["n0"].method == "ks" and verdicts["c0"].method == "chi2"
    assert set(verdicts["n1"].scores) == {"ks", "ks_p", "psi"}
    assert verdicts["n1"].detected is True  # p < 0.05
    assert verdicts["c1"].scores["chi2_p"] < 0.05 and verdicts["c1"].detected is True


def test_drift_and_reference_series_are_exposed_and_parse_strictly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from otelml.gateway.exporters.prometheus import render

    monkeypatch.setattr(Exemplars, "refresh_s", 0.0)
    state, pipeline, engine = _setup(5000, tmp_path)
    rng = np.random.default_rng(4)
    for step in range(3):
        _send_step(pipeline, rng, step, shifted=True)
        engine.evaluate(state.store, now=float(step))
    samples = {}
    for family in text_string_to_metric_families(render(state.families(), openmetrics=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample
    base = {"model": "m", "model_version": "1"}

    def get(name: str, **labels: str) -> Any:
        return samples[(name, frozenset({**base, **labels}.items()))]

    n1 = engine.verdicts[(ModelKey("m", "1"), SeriesKey("feature", "n1"))]
    assert get("otelml_drift_score", feature="n1", method="wasserstein").value == pytest.approx(
        n1.scores["wasserstein"]
    )
    assert get("otelml_drift_detected", feature="n1").value == 1
    assert get("otelml_drift_detected", feature="n0").value == 0
    assert get("otelml_drift_window_observations", feature="n1").value == 1200
    assert get("otelml_drift_insufficient_data", feature="n1").value == 0
    events = get("otelml_drift_events_total", feature="n1", method="wasserstein")
    assert events.value == 1
    assert n1.exemplar is not None
    assert events.exemplar.labels["trace_id"] == n1.exemplar.trace_id
    # The reference's own counts, cumulative on the same `le` labels as the live histogram.
    reference = profile.load(tmp_path / "reference.json").features["n1"]
    top = get("otelml_reference_feature_value_bucket", feature="n1", le="+Inf")
    assert top.value == sum(reference.counts)
    other = get("otelml_reference_feature_category", feature="c1", category="a")
    assert other.value == reference_count(tmp_path, "c1", "a")


def reference_count(tmp_path: Path, feature: str, category: str) -> int:
    loaded = profile.load(tmp_path / "reference.json").features[feature]
    assert isinstance(loaded, profile.CategoricalProfile)
    return int(loaded.counts[list(loaded.categories).index(category)])


def test_windows_of_merged_workers_score_like_one_process(tmp_path: Path) -> None:
    """The window is linear in the counts: halves merged then windowed = the whole windowed."""
    whole, whole_pipeline, whole_engine = _setup(5000, tmp_path)
    halves = [_setup(5000, tmp_path) for _ in range(2)]
    merged_engine = DriftEngine(whole_engine.configs, whole_engine.profiles)
    for step in range(4):
        for part in range(2):
            # The same rows go to the whole and to one of the halves.
            seed = 100 * step + part
            request = step * 2 + part
            _send_step(whole_pipeline, np.random.default_rng(seed), request, step >= 2)
            _send_step(halves[part][1], np.random.default_rng(seed), request, step >= 2)
        merged = GatewayState.create(models=whole.store.models)
        for state, _, _ in halves:
            merged.merge(state)
        whole_engine.evaluate(whole.store, now=float(step))
        merged_engine.evaluate(merged.store, now=float(step))
        assert merged_engine.verdicts.keys() == whole_engine.verdicts.keys()
        for key, verdict in whole_engine.verdicts.items():
            other = merged_engine.verdicts[key]
            assert other.observations == verdict.observations
            assert other.detected == verdict.detected
            assert other.scores == pytest.approx(verdict.scores, rel=1e-12)


def test_prediction_drift_is_exposed_like_feature_drift(tmp_path: Path) -> None:
    from otelml.gateway.exporters.prometheus import render

    rng = np.random.default_rng(7)
    training = pd.DataFrame({"x": rng.normal(0, 1, 3000), "score": rng.uniform(0, 1, 3000)})
    path = tmp_path / "reference.json"
    profile.save(profile.build(training, model="p", version="1", predictions=["score"]), path)
    config = parse(
        {
            "models": [
                {
                    "name": "p",
                    "version": "1",
                    "reference": str(path),
                    "window": 5,
                    "step": 1,
                    "drift": {"min_samples": 50},
                }
            ]
        }
    )
    models = [ModelProfile("p", "1", profile.load(path))]
    state = GatewayState.create(models=models)
    state.drift = DriftEngine(config.models, models)
    pipeline = state.pipeline()
    spans = [
        {
            semconv.MODEL_NAME: "p",
            semconv.MODEL_VERSION: "1",
            semconv.PREDICTION_PREFIX + "score": float(v),
            F + "x": float(x),
        }
        for v, x in zip(rng.uniform(0.6, 1.0, 300), rng.normal(0, 1, 300), strict=True)
    ]
    pipeline.consume_traces(traces(spans), "test")
    state.drift.evaluate(state.store, now=0.0)
    verdict = state.drift.verdicts[(ModelKey("p", "1"), SeriesKey("prediction", "score"))]
    assert verdict.method == "wasserstein" and verdict.detected is True
    text = render(state.families(), openmetrics=True)
    assert 'otelml_prediction_drift_detected{model="p",model_version="1",output="score"} 1' in text
    assert 'otelml_drift_detected{model="p",model_version="1",feature="x"} 0' in text
