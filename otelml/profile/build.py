"""Summarise a training table into a :class:`~.model.Profile`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from pandas.api import types as pdt  # type: ignore[import-untyped, unused-ignore]

from otelml.profile.binning import bucket_counts, bucket_index, quantile_edges
from otelml.profile.calibration import bucket_positive_rate
from otelml.profile.categories import category_label
from otelml.profile.errors import ProfileError
from otelml.profile.model import (
    Calibration,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    Profile,
)
from otelml.semconv import OTHER_CATEGORY


def build(
    df: pd.DataFrame,
    *,
    model: str | None = None,
    version: str | None = None,
    predictions: Sequence[str] = (),
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
    bins: int = 10,
    top_k: int = 20,
    vocabulary_limit: int = 1000,
    target: str | None = None,
    threshold: float = 0.5,
    calibration_bins: int = 20,
) -> Profile:
    """Profile every column of ``df``: ``predictions`` as model outputs, the rest as features.

    Column kinds: bool -> categorical; int/float -> numeric unless named in
    ``categorical``; object/string/category -> categorical; anything else (dates, ...) is
    an error, so exclude or convert it. Numeric columns get ``bins`` equal-frequency
    buckets (:func:`.binning.quantile_edges`); null, NaN and ±inf count as ``missing``.
    Categorical columns keep the ``top_k`` labels and, up to ``vocabulary_limit`` distinct
    labels, the full vocabulary. Raises :class:`ProfileError` on unusable input.
    """
    _check_arguments(
        df,
        predictions=predictions,
        exclude=exclude,
        categorical=categorical,
        bins=bins,
        top_k=top_k,
        vocabulary_limit=vocabulary_limit,
    )
    skipped = {*exclude, *predictions, *([target] if target is not None else [])}
    feature_names = [str(c) for c in df.columns if c not in skipped]
    if not feature_names and not predictions:
        raise ProfileError("nothing to profile: every column is excluded")

    def profile(name: str) -> FeatureProfile:
        return _profile_column(
            df[name],
            name,
            as_categorical=name in categorical,
            bins=bins,
            top_k=top_k,
            vocabulary_limit=vocabulary_limit,
        )

    outputs = {name: profile(name) for name in predictions}
    calibration: dict[str, Calibration] = {}
    if target is not None:
        labels = _binary_labels(df, target)
        for name in predictions:
            if not isinstance(outputs[name], NumericProfile):  # a class output: no calibration
                continue
            probabilities = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
            finite = np.isfinite(probabilities)
            if not (
                finite.any()
                and probabilities[finite].min() >= 0
                and probabilities[finite].max() <= 1
            ):
                continue
            edges = np.union1d(quantile_edges(probabilities[finite], calibration_bins), [threshold])
            outputs[name] = _numeric(df[name], name, calibration_bins, edges)
            usable = finite & ~np.isnan(labels)
            buckets = bucket_index(edges, probabilities[usable])
            rate = bucket_positive_rate(buckets, labels[usable] > 0.5, len(edges) + 1)
            calibration[name] = Calibration(target, threshold, tuple(float(r) for r in rate))
    return Profile(
        model=model,
        version=version,
        rows=len(df),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        features={name: profile(name) for name in feature_names},
        predictions=outputs,
        calibration=calibration,
    )


def _binary_labels(df: pd.DataFrame, target: str) -> npt.NDArray[np.float64]:
    """The target as 0/1 floats (NaN where missing); anything else is an error."""
    if target not in df.columns:
        raise ProfileError(f"target column {target!r} is not in the data")
    labels = df[target].to_numpy(dtype=np.float64, na_value=np.nan)
    present = labels[~np.isnan(labels)]
    if not np.isin(present, (0.0, 1.0)).all():
        raise ProfileError(f"target column {target!r}: labels must be 0/1 or bool")
    return labels


def _check_arguments(
    df: pd.DataFrame,
    *,
    predictions: Sequence[str],
    exclude: Sequence[str],
    categorical: Sequence[str],
    bins: int,
    top_k: int,
    vocabulary_limit: int,
) -> None:
    if len(df) == 0:
        raise ProfileError("the table has no rows")
    if not all(isinstance(c, str) for c in df.columns):
        raise ProfileError("column names must be strings")
    duplicated = sorted(set(df.columns[df.columns.duplicated()]))
    if duplicated:
        raise ProfileError(f"duplicated column names: {', '.join(duplicated)}")
    for option, names in (
        ("prediction", predictions),
        ("exclude", exclude),
        ("categorical", categorical),
    ):
        if isinstance(names, str):
            raise ProfileError(f"{option}: expected a sequence of column names, not a string")
        unknown = [n for n in names if n not in df.columns]
        if unknown:
            raise ProfileError(f"{option}: no such column: {', '.join(map(repr, unknown))}")
    both = sorted(set(predictions) & set(exclude))
    if both:
        raise ProfileError(f"columns both predicted and excluded: {', '.join(map(repr, both))}")
    if len(set(predictions)) != len(predictions):
        raise ProfileError("prediction: a column is named more than once")
    for option, value, minimum in (
        ("bins", bins, 1),
        ("top_k", top_k, 1),
        ("vocabulary_limit", vocabulary_limit, 0),
    ):
        if value < minimum:
            raise ProfileError(f"{option} must be >= {minimum}, got {value}")


def _profile_column(
    series: pd.Series,
    name: str,
    *,
    as_categorical: bool,
    bins: int,
    top_k: int,
    vocabulary_limit: int,
) -> FeatureProfile:
    dtype = series.dtype
    if pdt.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return _categorical(series, name, top_k, vocabulary_limit)
    if pdt.is_numeric_dtype(dtype) and not pdt.is_complex_dtype(dtype):
        if as_categorical:
            return _categorical(series, name, top_k, vocabulary_limit)
        return _numeric(series, name, bins)
    if pdt.is_object_dtype(dtype) or pdt.is_string_dtype(dtype):
        return _categorical(series, name, top_k, vocabulary_limit)
    raise ProfileError(f"column {name!r}: unsupported dtype {dtype}; exclude or convert it")


def _numeric(
    series: pd.Series, name: str, bins: int, edges: npt.NDArray[np.float64] | None = None
) -> NumericProfile:
    raw: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = raw[np.isfinite(raw)]
    if values.size == 0:
        raise ProfileError(f"column {name!r}: no finite value to profile")
    if edges is None:
        edges = quantile_edges(values, bins)
    counts = bucket_counts(edges, values)
    sums = np.bincount(bucket_index(edges, values), weights=values, minlength=len(edges) + 1)
    return NumericProfile(
        name=name,
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        count=int(values.size),
        missing=int(raw.size - values.size),
        min=float(values.min()),
        max=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        unique=int(np.unique(values).size),
        bucket_means=tuple(
            float(total / n) if n else None
            for total, n in zip(sums.tolist(), counts.tolist(), strict=True)
        ),
    )


def _categorical(
    series: pd.Series, name: str, top_k: int, vocabulary_limit: int
) -> CategoricalProfile:
    present: list[Any] = series[series.notna()].tolist()
    if not present:
        raise ProfileError(f"column {name!r}: no non-missing value to profile")
    tally = Counter(category_label(v) for v in present)
    if OTHER_CATEGORY in tally:
        raise ProfileError(f"column {name!r}: the value {OTHER_CATEGORY!r} is reserved")
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[:top_k]
    return CategoricalProfile(
        name=name,
        categories=tuple(label for label, _ in top),
        counts=(*(n for _, n in top), sum(n for _, n in ranked[top_k:])),
        count=len(present),
        missing=len(series) - len(present),
        unique=len(tally),
        vocabulary=tuple(sorted(tally)) if len(tally) <= vocabulary_limit else None,
    )
