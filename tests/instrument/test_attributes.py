"""Every accepted features/prediction shape → the exact attribute values the SDK will send."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from otelml import semconv
from otelml.instrument.attributes import (
    Columns,
    batch_rows,
    feature_columns,
    ml_attributes,
    prediction_columns,
)


def _same(actual: object, expected: list[Any]) -> bool:
    assert isinstance(actual, list)
    return len(actual) == len(expected) and all(
        (isinstance(a, float) and math.isnan(a) and isinstance(e, float) and math.isnan(e))
        or (a == e and type(a) is type(e))
        for a, e in zip(actual, expected, strict=True)
    )


def test_one_row_mapping_gives_scalars_and_drops_missing() -> None:
    columns = feature_columns(
        {"age": np.int64(41), "income": 52_000.5, "plan": "pro", "vip": np.bool_(True), "x": None}
    )
    assert columns == Columns({"age": 41, "income": 52_000.5, "plan": "pro", "vip": True}, None)
    assert type(columns.values["age"]) is int and type(columns.values["vip"]) is bool


def test_columns_mapping_is_a_batch_and_broadcasts_scalars() -> None:
    columns = feature_columns({"age": [41, 37, 29], "plan": "pro"})
    assert columns.rows == 3
    assert columns.values == {"age": [41, 37, 29], "plan": "pro"}


def test_rows_of_mappings_union_their_keys_with_none_for_missing() -> None:
    columns = feature_columns([{"age": 41, "plan": "pro"}, {"age": 37.5}, {"plan": "free"}])
    assert columns.rows == 3
    assert _same(columns.values["age"], [41.0, 37.5, math.nan])  # int+float → float
    assert columns.values["plan"] == ["pro", None, "free"]


def test_dataframe_columns_keep_types_and_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "age": [41, 37, 29],
            "income": [1.5, np.nan, 3.0],
            "plan": pd.Categorical(["pro", None, "free"]),
            "clicks": pd.array([3, None, 5], dtype="Int64"),
            "vip": [True, False, True],
            "mixed": ["a", 2, None],
        }
    )
    columns = feature_columns(frame)
    assert columns.rows == 3
    assert _same(columns.values["age"], [41, 37, 29])
    assert _same(columns.values["income"], [1.5, math.nan, 3.0])
    assert columns.values["plan"] == ["pro", None, "free"]
    assert _same(columns.values["clicks"], [3.0, math.nan, 5.0])  # nullable ints: NaN = missing
    assert columns.values["vip"] == [True, False, True]
    assert columns.values["mixed"] == ["a", "2", None]  # mixed types → strings (homogeneous)


def test_series_is_one_row() -> None:
    columns = feature_columns(pd.Series({"age": 41, "income": 2.5}))
    assert columns == Columns({"age": 41.0, "income": 2.5}, None)


def test_numpy_arrays_need_names() -> None:
    batch = feature_columns(np.array([[1.0, 2.0], [3.0, 4.0]]), names=["a", "b"])
    assert batch == Columns({"a": [1.0, 3.0], "b": [2.0, 4.0]}, 2)
    row = feature_columns(np.array([1, 2]), names=["a", "b"])
    assert row == Columns({"a": 1, "b": 2}, None)
    lists = feature_columns([[1, "x"], [2, "y"]], names=["a", "b"])
    assert lists == Columns({"a": [1, 2], "b": ["x", "y"]}, 2)
    with pytest.raises(ValueError, match="feature_names"):
        feature_columns(np.array([[1.0]]))
    with pytest.raises(ValueError, match="do not match"):
        feature_columns(np.zeros((2, 3)), names=["a", "b"])


def test_unsupported_features_and_ragged_columns_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="features must be"):
        feature_columns(42)
    with pytest.raises(ValueError, match="'b' has 1 rows, expected 2"):
        feature_columns({"a": [1, 2], "b": [3]})


def test_prediction_shapes() -> None:
    assert prediction_columns(0.7) == Columns({"prediction": 0.7}, None)
    assert prediction_columns(np.array([0.1, 0.9])) == Columns({"prediction": [0.1, 0.9]}, 2)
    assert prediction_columns(np.array([[1], [0]])) == Columns({"prediction": [1, 0]}, 2)
    assert prediction_columns(pd.Series(["a", "b"])) == Columns({"prediction": ["a", "b"]}, 2)
    multi = prediction_columns(pd.DataFrame({"label": ["a", "b"], "proba": [0.6, 0.8]}))
    assert multi == Columns({"label": ["a", "b"], "proba": [0.6, 0.8]}, 2)
    with pytest.raises(ValueError, match="output names"):
        prediction_columns(np.zeros((2, 3)))


def test_ml_attributes_use_the_semconv_names() -> None:
    attributes = ml_attributes(
        feature_columns({"age": [1, 2]}),
        prediction_columns({"prediction": [0.1, 0.2], "label": ["x", "y"]}),
        "churn",
        "3",
        ["p1", "p2"],
    )
    assert attributes == {
        semconv.MODEL_NAME: "churn",
        semconv.MODEL_VERSION: "3",
        semconv.FEATURE_PREFIX + "age": [1, 2],
        semconv.PREDICTION: [0.1, 0.2],
        semconv.PREDICTION_PREFIX + "label": ["x", "y"],
        semconv.PREDICTION_ID: ["p1", "p2"],
    }


def test_batch_rows_must_agree() -> None:
    assert batch_rows(feature_columns({"a": 1}), prediction_columns(0.5)) is None
    assert batch_rows(feature_columns({"a": [1, 2]}), prediction_columns(0.5)) == 2
    with pytest.raises(ValueError, match="disagree"):
        batch_rows(feature_columns({"a": [1, 2]}), prediction_columns([1, 2, 3]))


def test_exporters_without_null_elements_get_nan_and_empty_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otelml.instrument import attributes

    monkeypatch.setattr(attributes, "NONE_IN_ARRAYS", False)
    columns = feature_columns([{"p": "x", "n": 1, "b": True}, {}])
    assert columns.values["p"] == ["x", attributes.MISSING_STRING_FALLBACK]
    assert _same(columns.values["n"], [1.0, math.nan])
    assert _same(columns.values["b"], [1.0, math.nan])
