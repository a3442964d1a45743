"""Building profiles: exact bucket counts, category tallies, column kinds and input errors."""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from otelml.profile import (
    CategoricalProfile,
    NumericProfile,
    ProfileError,
    bucket_index,
    build,
    category_label,
)
from otelml.profile.binning import bucket_counts, quantile_edges
from otelml.profile.calibration import isotonic
from otelml.profile.io import from_dict, to_dict
from otelml.semconv import OTHER_CATEGORY


def numeric(df: pd.DataFrame, name: str, **kwargs: object) -> NumericProfile:
    column = build(df, **kwargs).features[name]  # type: ignore[arg-type]
    assert isinstance(column, NumericProfile)
    return column


def categorical(df: pd.DataFrame, name: str, **kwargs: object) -> CategoricalProfile:
    column = build(df, **kwargs).features[name]  # type: ignore[arg-type]
    assert isinstance(column, CategoricalProfile)
    return column


def reference_counts(edges: tuple[float, ...], values: np.ndarray) -> list[int]:
    """Bucket counts by the `le` definition, written out independently of searchsorted."""
    bounds = [-np.inf, *edges, np.inf]
    return [int(np.sum((values > lo) & (values <= hi))) for lo, hi in pairwise(bounds)]


# --- binning rule -------------------------------------------------------------------------


def test_bucket_index_follows_prometheus_le() -> None:
    edges = np.array([1.0, 2.0, 3.0])
    values = np.array([-5.0, 1.0, 1.5, 2.0, 2.000001, 3.0, 3.5])
    assert bucket_index(edges, values).tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert bucket_counts(edges, values).tolist() == [2, 2, 2, 1]


def test_bucket_counts_has_a_slot_per_bucket_even_when_empty() -> None:
    assert bucket_counts(np.array([1.0, 2.0]), np.array([], dtype=float)).tolist() == [0, 0, 0]


def test_quantile_edges_collapse_ties() -> None:
    assert quantile_edges(np.array([1.0, 1.0, 1.0, 2.0]), 4).tolist() == [1.0, 1.25, 2.0]
    assert quantile_edges(np.array([7.0, 7.0]), 10).tolist() == [7.0]


# --- numeric columns ----------------------------------------------------------------------


def test_numeric_small_case_by_hand() -> None:
    df = pd.DataFrame({"x": [5, 1, 2, 2, 3, 4, 5, 5, 9, 10]})
    p = numeric(df, "x", bins=4)
    # sorted: 1 2 2 3 4 5 5 5 9 10; linear quantiles at positions 0, 2.25, 4.5, 6.75, 9
    assert p.edges == (1.0, 2.25, 4.5, 5.0, 10.0)
    # <=1: {1}; (1,2.25]: {2,2}; (2.25,4.5]: {3,4}; (4.5,5]: {5,5,5}; (5,10]: {9,10}; >10: {}
    assert p.counts == (1, 2, 2, 3, 2, 0)
    assert (p.count, p.missing, p.unique) == (10, 0, 7)
    assert (p.min, p.max, p.mean) == (1.0, 10.0, 4.6)
    assert p.std == pytest.approx(statistics.stdev([5, 1, 2, 2, 3, 4, 5, 5, 9, 10]), rel=1e-12)
    assert p.name == "x"
    assert p.kind == "numeric"


@pytest.mark.parametrize("bins", [1, 3, 10, 50])
def test_numeric_counts_match_independent_count(bins: int) -> None:
    rng = np.random.default_rng(bins)
    values = np.concatenate([rng.normal(size=500), rng.integers(-3, 4, size=300).astype(float)])
    p = numeric(pd.DataFrame({"x": values}), "x", bins=bins)
    assert list(p.counts) == reference_counts(p.edges, values)
    assert p.counts == tuple(
        np.bincount(
            np.searchsorted(p.edges, values, side="left"), minlength=len(p.edges) + 1
        ).tolist()
    )
    assert sum(p.counts) == p.count == 800
    assert p.counts[-1] == 0
    assert p.edges[0] == values.min()
    assert p.edges[-1] == values.max()
    assert all(b > a for a, b in pairwise(p.edges))
    assert len(p.edges) <= bins + 1


def test_numeric_buckets_are_equal_frequency_for_distinct_values() -> None:
    values = np.arange(1, 101, dtype=float)  # 1..100
    p = numeric(pd.DataFrame({"x": values}), "x", bins=4)
    assert p.edges == (1.0, 25.75, 50.5, 75.25, 100.0)
    # {1} | 2..25 | 26..50 | 51..75 | 76..100 | nothing above the maximum
    assert p.counts == (1, 24, 25, 25, 25, 0)


def test_constant_column_has_single_edge() -> None:
    p = numeric(pd.DataFrame({"x": [7, 7, 7]}), "x")
    assert p.edges == (7.0,)
    assert p.counts == (3, 0)
    assert (p.min, p.max, p.mean, p.std, p.unique) == (7.0, 7.0, 7.0, 0.0, 1)


def test_single_value_has_zero_std() -> None:
    p = numeric(pd.DataFrame({"x": [np.nan, 2.5, None]}), "x")
    assert (p.count, p.missing, p.std, p.edges, p.counts) == (1, 2, 0.0, (2.5,), (1, 0))


def test_null_nan_and_infinities_count_as_missing() -> None:
    df = pd.DataFrame({"x": [1.0, None, np.nan, np.inf, -np.inf, 2.0, 3.0]})
    p = numeric(df, "x", bins=2)
    assert (p.count, p.missing) == (3, 4)
    assert p.edges == (1.0, 2.0, 3.0)
    assert p.counts == (1, 1, 1, 0)
    assert (p.min, p.max, p.mean) == (1.0, 3.0, 2.0)


def test_nullable_integer_column_is_numeric() -> None:
    df = pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64")})
    p = numeric(df, "x", bins=1)
    assert (p.edges, p.counts, p.count, p.missing) == ((1.0, 3.0), (1, 1, 0), 2, 1)


# --- categorical columns ------------------------------------------------------------------


def test_categorical_top_k_and_other_are_exact() -> None:
    values = ["a"] * 5 + ["c"] * 3 + ["b"] * 3 + ["d", "e"] + [None, None]
    p = categorical(pd.DataFrame({"c": values}), "c", top_k=2)
    # b and c tie at 3: the label order breaks the tie, so b is kept and c goes to __other__
    assert p.categories == ("a", "b")
    assert p.counts == (5, 3, 3 + 1 + 1)
    assert (p.count, p.missing, p.unique) == (13, 2, 5)
    assert p.vocabulary == ("a", "b", "c", "d", "e")
    assert p.kind == "categorical"


def test_categorical_with_fewer_values_than_top_k_has_empty_other() -> None:
    p = categorical(pd.DataFrame({"c": ["y", "x", "y"]}), "c")
    assert (p.categories, p.counts) == (("y", "x"), (2, 1, 0))


def test_bool_column_becomes_true_false() -> None:
    p = categorical(pd.DataFrame({"b": [True, False, True, True]}), "b")
    assert (p.categories, p.counts, p.vocabulary) == (
        ("true", "false"),
        (3, 1, 0),
        ("false", "true"),
    )


def test_object_bools_with_missing_values() -> None:
    p = categorical(pd.DataFrame({"b": [True, None, False, np.nan]}, dtype=object), "b")
    assert (p.categories, p.counts, p.count, p.missing) == (("false", "true"), (1, 1, 0), 2, 2)


def test_numeric_column_named_categorical_uses_integer_labels() -> None:
    df = pd.DataFrame({"i": [3, 3, 1], "f": [3.0, 2.5, np.nan]})
    i = categorical(df, "i", categorical=["i", "f"])
    f = categorical(df, "f", categorical=["i", "f"])
    assert (i.categories, i.counts) == (("3", "1"), (2, 1, 0))
    assert (f.categories, f.counts, f.missing) == (("2.5", "3"), (1, 1, 0), 1)


def test_pandas_category_dtype_is_categorical() -> None:
    df = pd.DataFrame({"c": pd.Categorical(["lo", "hi", "lo", None])})
    p = categorical(df, "c")
    assert (p.categories, p.counts, p.missing) == (("lo", "hi"), (2, 1, 0), 1)


def test_vocabulary_kept_up_to_the_limit_only() -> None:
    df = pd.DataFrame({"c": ["a", "b", "c"]})
    assert categorical(df, "c", vocabulary_limit=3).vocabulary == ("a", "b", "c")
    assert categorical(df, "c", vocabulary_limit=2).vocabulary is None
    assert categorical(df, "c", vocabulary_limit=2).unique == 3


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (True, "true"),
        (np.bool_(False), "false"),
        (3, "3"),
        (np.int64(-4), "-4"),
        (3.0, "3"),
        (np.float32(2.5), "2.5"),
        ("x", "x"),
        (float("inf"), "inf"),
    ],
)
def test_category_label(value: object, label: str) -> None:
    assert category_label(value) == label


# --- the whole profile ----------------------------------------------------------------------


def test_profile_splits_features_predictions_and_exclusions() -> None:
    df = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "age": [30, 40, 50],
            "plan": ["a", "b", "a"],
            "score": [0.1, 0.9, 0.5],
            "label": [True, False, True],
        }
    )
    p = build(df, model="churn", version="7", predictions=["label", "score"], exclude=["id"])
    assert list(p.features) == ["age", "plan"]
    assert list(p.predictions) == ["label", "score"]
    assert isinstance(p.features["age"], NumericProfile)
    assert isinstance(p.features["plan"], CategoricalProfile)
    assert isinstance(p.predictions["label"], CategoricalProfile)
    assert isinstance(p.predictions["score"], NumericProfile)
    assert (p.model, p.version, p.rows, p.format_version) == ("churn", "7", 3, 1)
    assert p.created.endswith("Z")
    created = datetime.fromisoformat(p.created.replace("Z", "+00:00"))
    assert created.utcoffset() is not None
    assert created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60


def test_every_column_has_count_plus_missing_equal_rows() -> None:
    df = pd.DataFrame({"x": [1.0, None, 3.0, np.inf], "c": ["a", None, None, "b"]})
    p = build(df)
    assert [(f.count, f.missing) for f in p.features.values()] == [(2, 2), (2, 2)]


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"x": []}), {}, "the table has no rows"),
        (pd.DataFrame({"x": [1]}), {"predictions": ["y"]}, "prediction: no such column: 'y'"),
        (pd.DataFrame({"x": [1]}), {"exclude": ["y", "z"]}, "exclude: no such column: 'y', 'z'"),
        (pd.DataFrame({"x": [1]}), {"categorical": ["q"]}, "categorical: no such column: 'q'"),
        (
            pd.DataFrame({"x": [1]}),
            {"predictions": "x"},
            "prediction: expected a sequence of column names, not a string",
        ),
        (pd.DataFrame({"x": [1]}), {"bins": 0}, "bins must be >= 1, got 0"),
        (pd.DataFrame({"x": [1]}), {"top_k": 0}, "top_k must be >= 1, got 0"),
        (
            pd.DataFrame({"x": [1]}),
            {"vocabulary_limit": -1},
            "vocabulary_limit must be >= 0, got -1",
        ),
        (
            pd.DataFrame({"x": [1]}),
            {"exclude": ["x"]},
            "nothing to profile: every column is excluded",
        ),
        (
            pd.DataFrame({"x": [1], "y": [2]}),
            {"predictions": ["y"], "exclude": ["y"]},
            "columns both predicted and excluded: 'y'",
        ),
        (
            pd.DataFrame({"x": [1], "y": [2]}),
            {"predictions": ["y", "y"]},
            "prediction: a column is named more than once",
        ),
        (pd.DataFrame({"x": [np.nan, np.inf]}), {}, "column 'x': no finite value to profile"),
        (
            pd.DataFrame({"c": [None, None]}, dtype=object),
            {},
            "column 'c': no non-missing value to profile",
        ),
        (
            pd.DataFrame({"c": ["a", OTHER_CATEGORY]}),
            {},
            "column 'c': the value '__other__' is reserved",
        ),
        (
            pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}),
            {},
            "column 't': unsupported dtype datetime64",
        ),
        (pd.DataFrame({0: [1]}), {}, "column names must be strings"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), {}, "duplicated column names: a"),
    ],
)
def test_unusable_input_is_rejected(
    frame: pd.DataFrame, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError) as info:
        build(frame, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_a_target_calibrates_each_probability_output_and_is_no_feature() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "p": p, "y": rng.random(2000) < p})
    built = build(frame, predictions=["p"], target="y")
    assert list(built.features) == ["x"]
    output = built.predictions["p"]
    assert isinstance(output, NumericProfile)
    assert 0.5 in output.edges and len(output.edges) == 22  # 21 quantile edges and 0.5
    calibration = built.calibration["p"]
    assert (calibration.target, calibration.threshold) == ("y", 0.5)
    bucket = bucket_index(np.asarray(output.edges), p)
    size = len(output.counts)
    rate = np.bincount(bucket, weights=frame["y"], minlength=size) / np.maximum(
        np.bincount(bucket, minlength=size), 1
    )
    expected = isotonic(rate, np.bincount(bucket, minlength=size))
    assert calibration.positive_rate == pytest.approx(tuple(expected))
    assert from_dict(to_dict(built)).calibration == built.calibration


def test_a_target_leaves_a_class_output_beside_the_probability_uncalibrated() -> None:
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "p": [0.1, 0.4, 0.6, 0.9], "label": ["no", "no", "yes", "yes"]}
    )
    frame["y"] = [0, 1, 0, 1]
    built = build(frame, predictions=["label", "p"], target="y")
    assert set(built.calibration) == {"p"}
    assert not isinstance(built.predictions["label"], NumericProfile)


def test_a_target_must_hold_binary_labels() -> None:
    frame = pd.DataFrame({"p": [0.1, 0.9], "y": [0, 2]})
    with pytest.raises(ProfileError, match="0/1"):
        build(frame, predictions=["p"], target="y")
