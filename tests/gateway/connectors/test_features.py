"""The features connector on hand-built OTLP requests: arrays, broadcast, missing, types."""

from __future__ import annotations

import numpy as np

from otelml import semconv
from otelml.gateway.connectors.features import FeaturesConnector
from otelml.gateway.decode import decode_logs, decode_traces
from otelml.gateway.state.budget import SeriesBudget
from otelml.gateway.state.distributions import (
    NOT_FINITE,
    TYPE_MISMATCH,
    CategoricalDistribution,
    NumericDistribution,
)
from otelml.gateway.state.keys import ModelKey, SeriesKey
from otelml.gateway.state.store import FeatureStore
from tests.gateway.otlp_builders import logs, traces

M = semconv.MODEL_NAME
V = semconv.MODEL_VERSION
F = semconv.FEATURE_PREFIX


def _store() -> tuple[FeatureStore, FeaturesConnector]:
    store = FeatureStore(SeriesBudget(100_000))
    return store, FeaturesConnector(store)


def _numeric(store: FeatureStore, model: str, name: str, version: str = "") -> NumericDistribution:
    found = store.existing(ModelKey(model, version), SeriesKey("feature", name))
    assert isinstance(found, NumericDistribution)
    return found


def _categorical(store: FeatureStore, model: str, name: str) -> CategoricalDistribution:
    found = store.existing(ModelKey(model, ""), SeriesKey("feature", name))
    assert isinstance(found, CategoricalDistribution)
    return found


def _counts_of(dist: NumericDistribution, values: list[float]) -> list[int]:
    counts = np.bincount(
        np.searchsorted(dist.edges, np.asarray(values), side="left"), minlength=len(dist.counts)
    )
    return [int(c) for c in counts]


def test_arrays_expand_per_row_and_scalars_broadcast_over_the_batch() -> None:
    store, connector = _store()
    payload = traces(
        [
            {M: "m", F + "x": [1.0, 2.0, 3.0], F + "region": "eu"},
            {M: "m", F + "x": 4.0, F + "region": ["us", "us"]},
        ]
    )
    connector.consume(decode_traces(payload))
    x = _numeric(store, "m", "x")
    assert x.counts.tolist() == _counts_of(x, [1.0, 2.0, 3.0, 4.0, 4.0])
    region = _categorical(store, "m", "region")
    counts = dict(zip(region.categories, region.counts.tolist(), strict=False))
    assert counts == {"eu": 3, "us": 2}
    assert x.missing == 0 and region.missing == 0


def test_absent_null_and_nan_are_missing_not_invalid() -> None:
    store, connector = _store()
    connector.consume(
        decode_traces(
            traces(
                [
                    {M: "m", F + "x": 1.0, F + "y": 5.0},
                    {M: "m", F + "y": 5.0},  # x absent
                    {M: "m", F + "x": None, F + "y": 5.0},  # x null (empty AnyValue)
                    {M: "m", F + "x": float("nan"), F + "y": 5.0},
                    {M: "m", F + "x": [2.0, float("nan")], F + "y": [1.0, 1.0]},
                ]
            )
        )
    )
    x = _numeric(store, "m", "x")
    assert x.missing == 4
    assert int(x.counts.sum()) == 2
    assert x.invalid.tolist() == [0, 0, 0, 0]
    # A feature first seen later still counts its absence from then on.
    connector.consume(decode_traces(traces([{M: "m", F + "y": 3.0}])))
    assert x.missing == 5


def test_numeric_accepts_int_double_bool_and_counts_mismatch() -> None:
    store, connector = _store()
    connector.consume(
        decode_traces(
            traces(
                [
                    {M: "m", F + "x": 3},
                    {M: "m", F + "x": 2.5},
                    {M: "m", F + "x": True},
                    {M: "m", F + "x": "seven"},
                    {M: "m", F + "x": b"\x00"},
                    {M: "m", F + "x": float("inf")},
                    {M: "m", F + "x": 1.0},
                ]
            )
        )
    )
    x = _numeric(store, "m", "x")
    assert x.counts.tolist() == _counts_of(x, [3.0, 2.5, 1.0, 1.0])
    assert x.invalid[TYPE_MISMATCH] == 2
    assert x.invalid[NOT_FINITE] == 1
    assert x.sum == 7.5


def test_categorical_stringifies_ints_and_bools_and_caps_learning() -> None:
    store = FeatureStore(SeriesBudget(100_000), max_categories=3)
    connector = FeaturesConnector(store)
    # Mostly strings: tracked as categorical; ints and bools become "7" and "true".
    values = ["a", "b", 7, True, "c", "a", 7, 1.5, "d", "e"]
    connector.consume(decode_traces(traces([{M: "m", F + "c": v} for v in values])))
    c = _categorical(store, "m", "c")
    assert c.categories == ["a", "b", "c"]
    assert c.counts.tolist() == [2, 1, 1, 5]  # a, b, c, __other__ (d, e, 7, 7, true)
    assert c.invalid[TYPE_MISMATCH] == 1  # the double
    connector.consume(decode_traces(traces([{M: "m", F + "c": 7}, {M: "m", F + "c": False}])))
    assert c.counts.tolist() == [2, 1, 1, 7]


def test_models_and_versions_are_kept_apart_and_unlabelled_spans_ignored() -> None:
    store, connector = _store()
    connector.consume(
        decode_traces(
            traces(
                [
                    {M: "a", V: "1", F + "x": 1.0},
                    {M: "a", V: "2", F + "x": 2.0},
                    {M: "b", F + "x": 3.0},
                    {F + "x": 4.0},  # no model: not a model span
                ]
            )
        )
    )
    assert int(_numeric(store, "a", "x", "1").counts.sum()) == 1
    assert int(_numeric(store, "a", "x", "2").counts.sum()) == 1
    assert int(_numeric(store, "b", "x").counts.sum()) == 1
    assert len(list(store.items())) == 3


def test_predictions_and_prediction_id_are_not_features() -> None:
    store, connector = _store()
    connector.consume(
        decode_traces(
            traces(
                [
                    {
                        M: "m",
                        semconv.PREDICTION: 0.7,
                        semconv.PREDICTION_PREFIX + "label": "churn",
                        semconv.PREDICTION_ID: "abc",
                    }
                ]
            )
        )
    )
    names = {(s.role, s.name) for _, s, _ in store.items()}
    assert names == {("prediction", "prediction"), ("prediction", "label")}


def test_log_records_are_read_like_spans_with_their_trace_ids() -> None:
    store, connector = _store()
    connector.consume(decode_logs(logs([{M: "m", F + "x": 0.5}, {M: "m", F + "x": 20.0}], 9)))
    x = _numeric(store, "m", "x")
    assert int(x.counts.sum()) == 2
    slots = np.flatnonzero(x.exemplars.time_s > 0)
    trace_ids = {int.from_bytes(x.exemplars.trace_id[s].tobytes(), "big") for s in slots}
    assert trace_ids == {9, 10}
