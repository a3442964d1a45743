"""Segments: every distribution and drift verdict also per value of a categorical feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otelml import profile, semconv
from otelml.config import parse
from otelml.gateway.drift.engine import DriftEngine
from otelml.gateway.exporters.prometheus import render
from otelml.gateway.gateway_state import GatewayState
from otelml.gateway.state.families import go_float
from otelml.gateway.validation import load_models
from tests.gateway.otlp_builders import traces

F = semconv.FEATURE_PREFIX


def test_series_are_sliced_by_segment_rows_and_bounded(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    training = pd.DataFrame(
        {"x": rng.normal(0, 1, 3000), "country": rng.choice(["DE", "FR", "US"], 3000)}
    )
    path = tmp_path / "reference.json"
    profile.save(profile.build(training, model="s", version="1"), path)
    config = parse(
        {
            "models": [
                {
                    "name": "s",
                    "version": "1",
                    "reference": str(path),
                    "segments": ["country"],
                    "window": 10,
                    "step": 1,
                    "drift": {"min_samples": 5},
                }
            ]
        }
    )
    models = load_models(config)
    state = GatewayState.create(models=models)
    state.drift = DriftEngine(config.models, models)
    pipeline = state.pipeline()
    rows: list[tuple[str, float]] = []
    spans = []
    for _ in range(40):  # scalar spans
        country, x = str(rng.choice(["DE", "FR", "ZZ"])), float(rng.normal())
        spans.append(
            {
                semconv.MODEL_NAME: "s",
                semconv.MODEL_VERSION: "1",
                F + "x": x,
                F + "country": country,
            }
        )
        rows.append((country, x))
    for _ in range(10):  # batches: countries per row
        countries = rng.choice(["DE", "US", "QQ"], 6).tolist()
        xs = rng.normal(1, 1, 6).tolist()
        spans.append(
            {
                semconv.MODEL_NAME: "s",
                semconv.MODEL_VERSION: "1",
                F + "x": xs,
                F + "country": countries,
            }
        )
        rows += list(zip(countries, xs, strict=True))
    spans.append(
        {
            semconv.MODEL_NAME: "s",
            semconv.MODEL_VERSION: "1",
            F + "x": [5.0, 6.0],
            F + "country": "US",
        }
    )  # a scalar segment applies to every row of the batch
    rows += [("US", 5.0), ("US", 6.0)]
    pipeline.consume_traces(traces(spans), "test")
    state.drift.evaluate(state.store, now=0.0)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(render(state.families(), openmetrics=True))
        for s in family.samples
    }
    edges = np.asarray(profile.load(path).features["x"].edges)  # type: ignore[union-attr]

    def expected(values: list[float]) -> int:
        return int(np.count_nonzero(np.asarray(values) <= edges[len(edges) // 2]))

    le_value = go_float(edges[len(edges) // 2])
    base = {"model": "s", "model_version": "1", "feature": "x", "le": le_value}
    # The whole model: every row, no segment labels.
    assert samples[("otelml_feature_value_bucket", frozenset(base.items()))] == expected(
        [x for _, x in rows]
    )
    # Each slice: its rows only; values outside the reference top-K go to __other__.
    for value, members in (
        ("DE", {"DE"}),
        ("FR", {"FR"}),
        ("US", {"US"}),
        (semconv.OTHER_CATEGORY, {"ZZ", "QQ"}),
    ):
        labels = {**base, "segment": "country", "segment_value": value}
        got = samples[("otelml_segment_feature_value_bucket", frozenset(labels.items()))]
        assert got == expected([x for c, x in rows if c in members]), value
    segment_values = {
        dict(k[1])["segment_value"]
        for k in samples
        if k[0] == "otelml_segment_feature_value_bucket"
    }
    assert segment_values == {"DE", "FR", "US", semconv.OTHER_CATEGORY}
    # Drift verdicts per slice too, in their own family.
    de = {
        "model": "s",
        "model_version": "1",
        "feature": "x",
        "segment": "country",
        "segment_value": "DE",
    }
    assert ("otelml_segment_drift_window_observations", frozenset(de.items())) in samples
    assert samples[("otelml_segment_drift_window_observations", frozenset(de.items()))] == sum(
        1 for c, _ in rows if c == "DE"
    )
